"""Recommendations: the shipped knowledge base, its matcher, and the Recommendation aggregate with verification."""

"""Personal notification settings: watched patterns and each user's notification preferences."""

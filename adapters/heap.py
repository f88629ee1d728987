"""Keep the cyclic garbage collector off the startup heap of a long-running process."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, the app, its schemas and pools) to the collector's permanent generation.

    Under load, objects of in-flight requests outlive the young collections, reach the oldest generation and
    trigger full collections about once a second; each scanned the whole startup heap and paused the event loop
    for ~50 ms (every request in flight waited), which was most of the API's p99. With the startup heap frozen a
    full collection scans only what came later: ~6 ms. Nothing frozen is ever freed, which is what the startup
    heap of a server is anyway.
    """
    gc.collect()
    gc.freeze()

"""Opt-in garbage-collector freezing for a triggerer that holds thousands of waits.

`[predibase] triggerer_gc_freeze = True` (or AIRFLOW__PREDIBASE__TRIGGERER_GC_FREEZE=True in
the triggerer's environment) freezes the heap after a wait's first successful poll, at most
every `GC_FREEZE_EVERY` seconds. Off by default: it changes the whole process (every
provider's triggers in it), which is the deployment's decision. See docs/scaling.md.
"""

from __future__ import annotations

import gc

#: `[predibase] triggerer_gc_freeze`: at most one `gc.freeze()` this often (seconds), and
#: one `gc.unfreeze()` this often, so that one full collection reclaims what a freeze kept.
GC_FREEZE_EVERY = 10.0
GC_UNFREEZE_EVERY = 3600.0


class GcFreeze:
    """Opt-in: `[predibase] triggerer_gc_freeze = True` (or the environment variable
    AIRFLOW__PREDIBASE__TRIGGERER_GC_FREEZE=True) freezes the triggerer's heap after a
    wait's first successful poll, at most every GC_FREEZE_EVERY seconds.

    With 10,000 waits the heap holds about a million objects, and every full garbage
    collection walks them all with the loop stopped (up to ~1 s; 12-21 s of CPU per 100 s).
    `gc.freeze()` moves what is alive into a generation the collector skips. The cost: an
    object alive at a freeze that later becomes cyclic garbage (a request in flight, a wait
    that ends) is kept until the hourly `gc.unfreeze()` hands everything back to the
    collector. Process-wide, so never by default. Read once per process.
    """

    enabled: bool | None = None
    next_freeze = 0.0
    next_unfreeze: float | None = None

    @classmethod
    def after_first_poll(cls, now: float) -> None:
        if cls.enabled is None:
            from airflow.providers.common.compat.sdk import conf

            cls.enabled = conf.getboolean("predibase", "triggerer_gc_freeze", fallback=False)
        if not cls.enabled or now < cls.next_freeze:
            return
        if cls.next_unfreeze is None:
            cls.next_unfreeze = now + GC_UNFREEZE_EVERY
        elif now >= cls.next_unfreeze:
            cls.next_unfreeze = now + GC_UNFREEZE_EVERY
            gc.unfreeze()
            cls.next_freeze = now + GC_FREEZE_EVERY  # let one full collection run first
            return
        cls.next_freeze = now + GC_FREEZE_EVERY
        gc.freeze()


def gc_freeze_after_first_poll(now: float) -> None:
    """Called by a trigger after its wait's first successful poll (`now`: monotonic)."""
    GcFreeze.after_first_poll(now)

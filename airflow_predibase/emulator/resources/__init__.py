"""The platform's resources, one service class per kind, each owning its rules and views.

Each subclasses `_base.Resource` (or `_base.LifecycleResource`), which owns the kind's
names, storage, listing and 404s; a module keeps only what is its own. Resources depend on
`emulator.context.Context` and on the sibling resources handed to them, never on `backend`.
"""

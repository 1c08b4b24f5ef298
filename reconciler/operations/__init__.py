"""Operations (docs/architecture.md): the steps that do I/O around the pure engine — refresh (list live jobs,
read the lockfile), apply (execute a plan, recording each step), the plan/apply/reconcile runs
that wire them for the CLI, import and state rebuild, status and tile maps, saved plan files.

Flow: load manifests → refresh → plan (pure, reconciler.engine) → render →
[lease → verify the plan is not stale → execute actions, recording each → release].
"""

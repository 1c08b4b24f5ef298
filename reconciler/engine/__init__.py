"""The engine (DESIGN §4): pair manifests with live jobs, diff them, plan actions — all pure —
and apply a plan, the only part that does I/O.

Flow: load manifests → refresh (list live, read lockfile) → pair → plan → render →
[lease → verify the plan is not stale → execute actions, recording each → release].
"""

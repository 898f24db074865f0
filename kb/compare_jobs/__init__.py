"""Jobs that compare documents for a user: `kb diff`, `kb crosscheck`, `kb eval --crosscheck`.

They drive the KnowledgeBase and the answer backends (a VLM verdict per candidate conflict), so they sit
above both `kb/compare/` (the comparison engine) and `kb/answer/`, which uses that engine for versions.
"""

"""Repository-level pytest configuration: skip torch doctests when torch is absent."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["src/bradley/nn/*"]

"""Judging: verdicts, comparison modes, the checker protocol, language presets and the compile
cache's index. Pure logic, no IO; the executor runs cases, detects languages and keeps the cache
files (khala/executor/judge.py, languages.py, compile_cache.py). See docs/judging.md.

- `verdicts`: a run's StepReport → a case verdict; cases → the task's verdict and score.
- `compare`: the modes exact, lines, tokens, float.
- `checker`: testlib exit codes → verdicts, the checker's command line.
- `presets`: the language table and how a detected host fills it in.
- `cache`: compile-cache keys and the bounded LRU index.
"""

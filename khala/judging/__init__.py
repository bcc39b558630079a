"""Judging: verdicts, comparison modes, the checker protocol, scores and groups, interactive
cases' decisions, language presets and the compile cache's index. Pure logic, no IO; the
executor runs cases, detects languages and keeps the cache files (khala/executor/judge.py,
caserun.py, interact.py, languages.py, compile_cache.py). See docs/judging.md.

- `verdicts`: a run's StepReport → a case verdict; cases → the task's verdict.
- `compare`: the modes exact, lines, tokens, float.
- `checker`: testlib exit codes → verdicts and partial points, the checker's command line.
- `scoring`: a case's points, groups (sum, min, dependencies), skip_failed_groups.
- `interaction`: what an interactive case's two runs (program, interactor) decide.
- `presets`: the language table and how a detected host fills it in.
- `cache`: compile-cache keys and the bounded LRU index.
- `validate`: a task's judging fields, refused with a message.
"""

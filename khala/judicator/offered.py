"""Whether a judged task can be run now: a task naming a language preset (its own or its
checker's) that no live executor offers is refused at submit, with the reason, rather than
queued to wait for an executor that may never come (docs/judging.md, "Languages").

The judicator reads the live executors' languages from the store (what `languages()` answers),
only for tasks that name a language; plain command tasks never pay for the lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from khala.errors import InvalidInput
from khala.model import Language, Task


class Capable(NamedTuple):
    """What one executor can be given (the arguments of Store.assign after the count): tasks
    whose languages are among `languages`, and tasks in images only when `images`. An image
    task no live executor can run is not refused: it waits queued for one that can."""

    languages: frozenset[str]
    images: bool


def wanted_languages(task: Task) -> list[tuple[str, str]]:
    """(field, language) pairs the task needs: compile.language and the checker's."""
    wanted = []
    if task.compile.language:
        wanted.append(("compile.language", task.compile.language))
    compare = task.execute.compare
    if compare is not None and compare.checker is not None and compare.checker.language:
        wanted.append(("execute.compare.checker.language", compare.checker.language))
    return wanted


def check_offered(task: Task, live: Callable[[], list[Language]]) -> None:
    """Raise InvalidInput naming the field when a language the task needs is offered by no
    live executor. `live` is called only when the task names a language."""
    wanted = wanted_languages(task)
    if not wanted:
        return
    live_ones = [x for x in live() if x.executors > 0 or x.executor_names]
    offered = sorted({x.name for x in live_ones})
    image = task.compile.image.name if task.compile.image is not None else ""
    for field, name in wanted:
        if name not in offered:
            now = ", ".join(offered) if offered else "none"
            raise InvalidInput(f"{field}: no live executor offers {name!r} (offered now: {now})")
        if field == "compile.language" and not any(
                x.name == name and _offered_for(x.image, image) for x in live_ones):
            where = f"in image {image!r}" if image else "on its host (no image named)"
            images = sorted({x.image or "the host" for x in live_ones if x.name == name})
            raise InvalidInput(f"{field}: no live executor offers {name!r} {where} (offered "
                               f"in: {', '.join(images)})")


def _offered_for(offered_in: str, image: str) -> bool:
    """Whether a language offered in `offered_in` (an image "name:version", "" = the host)
    serves a program built in `image` (an image name, "" = the host). An image without presets
    of its own runs the host's preset commands, so host offers serve any image."""
    return not offered_in or offered_in.partition(":")[0] == image

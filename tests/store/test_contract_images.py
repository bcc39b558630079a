"""The image side of the store (khala/store/images.py) on SQLite and on the MongoDB-wire server
(FerretDB): versions numbered per name and never given twice, the latest, deletion, racing
writers; a task's image references kept with the task."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from khala.files.refs import FileRef
from khala.model import ImageRef
from khala.store.base import Store
from tests.store.test_contract import at, make_task, opener, store  # noqa: F401 - fixtures used by name

TAR_A, TAR_B = FileRef("a" * 64, 100), FileRef("b" * 64, 200)


def test_versions_are_numbered_per_name_and_never_given_twice(
        opener: Callable[[], Store]) -> None:  # noqa: F811
    s = opener()
    assert s.images.get("base") is None and s.images.all() == []
    assert s.images.add("base", TAR_A, "first", at(1)) == 1
    assert s.images.add("base", TAR_B, "", at(2)) == 2
    assert s.images.add("other", TAR_A, "", at(3)) == 1
    latest = s.images.get("base")
    assert latest is not None and (latest.version, latest.file, latest.note) == (2, TAR_B, "")
    first = s.images.get("base", 1)
    assert first is not None and (first.file, first.note, first.created) == (TAR_A, "first",
                                                                            at(1))
    assert [(i.name, i.version) for i in s.images.all()] == [("base", 1), ("base", 2),
                                                            ("other", 1)]
    assert [i.version for i in s.images.all("base")] == [1, 2]
    assert s.images.delete("base", 2) and not s.images.delete("base", 2)
    assert s.images.get("base").version == 1  # type: ignore[union-attr]
    assert s.images.add("base", TAR_B, "", at(4)) == 3  # 2 is not given again
    assert s.images.get("base", 2) is None


def test_racing_writers_get_distinct_versions(opener: Callable[[], Store]) -> None:  # noqa: F811
    stores = [opener(), opener()]
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda i: stores[i % 2].images.add("race", TAR_A, "", at(i)),
                                range(16)))
    assert sorted(numbers) == list(range(1, 17))
    assert [i.version for i in stores[0].images.all("race")] == list(range(1, 17))


def test_a_tasks_image_references_are_kept(store: Store) -> None:  # noqa: F811
    task = make_task()
    task.compile.image = ImageRef(name="base", version=0, resolved=3, sha256="c" * 64, size=9)
    task.execute.image = ImageRef(name="other", version=2, resolved=2, sha256="d" * 64, size=7)
    store.add(task)
    got = store.get(task.id)
    assert got is not None
    assert got.compile.image == task.compile.image and got.execute.image == task.execute.image
    plain = make_task()
    store.add(plain)
    again = store.get(plain.id)
    assert again is not None and again.compile.image is None and again.execute.image is None


def test_only_an_executor_that_runs_images_is_given_a_task_in_one(
        store: Store) -> None:  # noqa: F811
    """Oldest first, but an executor that cannot run steps in images (`images` False) passes
    over the tasks that name one, on either step; they wait for one that can."""
    ref = ImageRef(name="base", version=1, resolved=1, sha256="c" * 64, size=9)
    in_compile, in_execute, plain = make_task(1), make_task(2), make_task(3)
    in_compile.compile.image = ref
    in_execute.execute.image = ref
    for task in (in_compile, in_execute, plain):
        store.add(task)
    assert [t.id for t in store.assign("none", 5, at(10), frozenset(), False)] == [plain.id]
    assert store.assign("none", 5, at(11), None, False) == []
    got = store.assign("bwrap", 5, at(12), frozenset(), True)
    assert sorted(t.id for t in got) == sorted([in_compile.id, in_execute.id])

"""Reading a unified diff into per-file changes, including broken diffs."""

from __future__ import annotations

from db.diff_files import DiffFile, diff_files, diff_totals

MODIFIED = """\
diff --git a/src/app.py b/src/app.py
index 83db48f..bf269f4 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,4 @@
 import os
-print(1)
+print(2)
+print(3)
 done()
"""

ADDED = """\
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3b18e51
--- /dev/null
+++ b/new.txt
@@ -0,0 +1,2 @@
+hello
+world
"""

DELETED = """\
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 3b18e51..0000000
--- a/old.txt
+++ /dev/null
@@ -1,3 +0,0 @@
-a
-b
-c
"""

RENAMED = """\
diff --git a/docs/a.md b/docs/b.md
similarity index 80%
rename from docs/a.md
rename to docs/b.md
index 1111111..2222222 100644
--- a/docs/a.md
+++ b/docs/b.md
@@ -1,2 +1,2 @@
 title
-body
+new body
"""

PURE_RENAME = """\
diff --git a/x.txt b/y.txt
similarity index 100%
rename from x.txt
rename to y.txt
"""

BINARY_MODIFIED = """\
diff --git a/logo.png b/logo.png
index 1111111..2222222 100644
Binary files a/logo.png and b/logo.png differ
"""

BINARY_ADDED = """\
diff --git a/blob.bin b/blob.bin
new file mode 100644
Binary files /dev/null and b/blob.bin differ
"""

EMPTY_ADDED = """\
diff --git a/empty b/empty
new file mode 100644
index 0000000..e69de29
"""

ALL = MODIFIED + ADDED + DELETED + RENAMED + PURE_RENAME + BINARY_MODIFIED


def test_empty_and_blank_diffs_have_no_files() -> None:
    assert diff_files("") == []
    assert diff_files("\n\n") == []


def test_each_status_with_its_counts() -> None:
    assert diff_files(ALL) == [
        DiffFile("src/app.py", None, "modified", 2, 1),
        DiffFile("new.txt", None, "added", 2, 0),
        DiffFile("old.txt", None, "deleted", 0, 3),
        DiffFile("docs/b.md", "docs/a.md", "renamed", 1, 1),
        DiffFile("y.txt", "x.txt", "renamed", 0, 0),
        DiffFile("logo.png", None, "modified", 0, 0),
    ]


def test_binary_and_empty_new_files_are_added_with_no_lines() -> None:
    assert diff_files(BINARY_ADDED + EMPTY_ADDED) == [
        DiffFile("blob.bin", None, "added", 0, 0),
        DiffFile("empty", None, "added", 0, 0),
    ]


def test_totals() -> None:
    assert diff_totals(diff_files(ALL)) == (5, 5, 6)
    assert diff_totals([]) == (0, 0, 0)


def test_paths_with_spaces_and_quotes() -> None:
    spaced = ADDED.replace("new.txt", "my notes.txt").replace(
        "+++ b/my notes.txt", "+++ b/my notes.txt\t"
    )
    quoted = MODIFIED.replace("a/src/app.py", '"a/tab\\there"').replace(
        "b/src/app.py", '"b/tab\\there"'
    )
    octal = ADDED.replace("a/new.txt", '"a/\\303\\274.txt"').replace(
        "b/new.txt", '"b/\\303\\274.txt"'
    )
    assert [f.path for f in diff_files(spaced + quoted + octal)] == [
        "my notes.txt",
        "tab\there",
        "ü.txt",
    ]


def test_a_diff_cut_by_the_size_cap_keeps_the_whole_files() -> None:
    cut = MODIFIED + ADDED + "# diff too large: 1234 bytes omitted\n"
    assert diff_files(cut) == [
        DiffFile("src/app.py", None, "modified", 2, 1),
        DiffFile("new.txt", None, "added", 2, 0),
    ]


def test_a_file_cut_mid_hunk_is_still_listed() -> None:
    cut = ADDED + DELETED[: DELETED.index("-b")] + "# diff too large: 9 bytes omitted\n"
    assert diff_files(cut) == [
        DiffFile("new.txt", None, "added", 2, 0),
        DiffFile("old.txt", None, "deleted", 0, 1),
    ]


def test_garbage_does_not_raise() -> None:
    assert diff_files("not a diff\n@@ -1 +1 @@\n+x\n") == []
    assert diff_files("+++ b/only-target\n") == []
    assert diff_files("\\ No newline at end of file\n") == []


def test_no_truncation_raises() -> None:
    for end in range(len(ALL)):
        files = diff_files(ALL[:end])
        assert all(f.additions >= 0 and f.deletions >= 0 for f in files)

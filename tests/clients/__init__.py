"""Tests of the example clients in other languages against the running suite (a package: the suite fixture lives
as long as these tests, not the whole session)."""

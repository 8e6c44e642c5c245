"""Backing up one installed config and bringing it back on another machine: `vigil export` and
`vigil import`. The archive's format is defined once (archive.py); export.py collects what a
setup is made of, restore.py checks an archive whole before it writes anything and restores it
ahead of the normal apply."""

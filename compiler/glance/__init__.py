"""The pictures: `vigil timeline` in the terminal and the status page (`vigil report --html`,
`vigil serve`). What they show is gathered once (collect.py, into model.py's shapes) and drawn
by each (timeline.py, page.py); neither changes anything."""

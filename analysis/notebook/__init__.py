"""Notebook glue: the class-explorer widget (:mod:`.widgets`), live training curves (:mod:`.live`),
what ``01_train`` calls (:mod:`.training`), the video notebook's figures (:mod:`.video`) and
executing a notebook with parameters (:mod:`.execute`). The top layer: nothing else in analysis
imports it."""

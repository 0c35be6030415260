"""analysis.report.shared_maps: the maps a dossier's pages share with its index, made by two threads,
equal the maps made one class after another on the run itself, and come back in class order."""

from __future__ import annotations

import numpy as np
import torch

from analysis.attribution.temporal import FRAME_ABLATION, INTEGRATED_GRADIENTS, keyframe_importance
from analysis.internals.map_store import MapStore
from analysis.internals.run import open_run
from analysis.report.shared_maps import MAP_THREADS, map_threads, shared_maps_by_class

VIEWS = [FRAME_ABLATION, INTEGRATED_GRADIENTS]


def _classes(run):
    return [(name, run.positions_of_class(k)) for k, name in enumerate(run.class_names)]


def test_two_threads_make_the_maps_one_thread_makes_in_class_order(tiny_run):
    threaded = open_run(tiny_run, device="cpu", progress=False)
    single = open_run(tiny_run, device="cpu", progress=False)
    classes = _classes(threaded)
    seen = []
    for name in shared_maps_by_class(threaded, classes, VIEWS, small=True, threads=2):
        seen.append(name)
        done = np.concatenate([p for n, p in classes if n in seen])
        # Every map of the classes yielded so far is in the run itself by now.
        store = next(s for k, s in threaded.attributions.items() if k.startswith("integrated_gradients"))
        assert all((int(p), int(threaded.labels[p])) in store for p in done)
    assert seen == [name for name, _ in classes]
    for name, positions in classes:
        keyframe_importance(single, positions, VIEWS, small=True)
    assert threaded.attributions.keys() == single.attributions.keys()
    for key, store in single.attributions.items():
        assert sorted(store.keys()) == sorted(threaded.attributions[key].keys())
        for p, t in store.keys():
            assert torch.equal(threaded.attributions[key].get(p, t), store.get(p, t))


def test_each_thread_works_on_its_own_copy_of_the_model(tiny_run, monkeypatch):
    import analysis.attribution.attribute as attribute_module

    run = open_run(tiny_run, device="cpu", progress=False)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    models = []
    original = attribute_module.attribute

    def recorded(model, *args, **kwargs):
        models.append(model)
        return original(model, *args, **kwargs)

    monkeypatch.setattr(attribute_module, "attribute", recorded)
    list(shared_maps_by_class(run, _classes(run), [FRAME_ABLATION], threads=2))
    assert models and all(m is not run.model for m in models)
    assert len({id(m) for m in models}) <= 2
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())


def test_leaving_early_cancels_the_classes_not_started(tiny_run, monkeypatch):
    import analysis.attribution.temporal as temporal

    run = open_run(tiny_run, device="cpu", progress=False)
    classes = _classes(run)
    made = []
    original = temporal.keyframe_importance

    def counted(worker, positions, views, small=False):
        made.append(len(positions))
        return original(worker, positions, views, small=small)

    monkeypatch.setattr(temporal, "keyframe_importance", counted)
    maps = shared_maps_by_class(run, classes, [FRAME_ABLATION], threads=1)
    assert next(maps) == classes[0][0]
    maps.close()
    assert len(made) < len(classes)


def test_a_store_takes_the_maps_it_does_not_hold():
    mine, other = MapStore(), MapStore()
    kept, theirs, new = torch.rand(3, 4), torch.rand(3, 4), torch.rand(3, 4)
    mine.put(1, 0, kept)
    other.put(1, 0, theirs)
    other.put(2, 5, new)
    mine.take(other)
    assert torch.equal(mine.get(1, 0), kept) and torch.equal(mine.get(2, 5), new) and len(mine) == 2


def test_one_thread_on_a_gpu_where_cudnn_is_switched_for_the_whole_process():
    assert map_threads("cpu") == MAP_THREADS == 2
    assert map_threads(torch.device("cuda", 0)) == 1

"""sweep against real services: child train_model tasks spread over both executors, narrowing
rounds, every trial registered and recorded, promotion only when better, failed trials kept,
and the trial history's trend and recommendation."""

from __future__ import annotations

import math

from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.clients.quant import QuantClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.settings import Settings
from tests.integration.executor.plugins.quant.helpers import SMALL, run

SPACE = {"alpha": {"type": "range", "low": 0.01, "high": 1000.0, "log": True}}


async def test_a_sweep_fans_out_narrows_records_and_promotes(qbus: Bus, unique: str) -> None:
    model = f"sweep-{unique}"
    record = await run(qbus, "sweep", {**SMALL, "estimator": "ridge", "space": SPACE,
                                       "n_trials": 6, "rounds": 2, "top_k": 2,
                                       "model_name": model, "promote": True,
                                       "keep_best": 3}, timeout_s=120)
    result = record.result
    assert isinstance(result, dict)
    trials = result["trials"]
    assert result["succeeded"] == len(trials) == 12 and result["failed"] == 0
    first = sorted(trials[:6], key=lambda t: t["metrics"]["sharpe"], reverse=True)[:2]
    top = [math.log(t["params"]["alpha"]) for t in first]
    pad = max(0.25 * (max(top) - min(top)), 0.1 * (math.log(1000) - math.log(0.01)))
    for t in trials[6:]:  # round 2 stays in the narrowed range around round 1's best two
        assert min(top) - pad - 1e-9 <= math.log(t["params"]["alpha"]) <= max(top) + pad + 1e-9
    best = result["best"]
    assert best["metrics"]["sharpe"] == max(t["metrics"]["sharpe"] for t in trials)
    assert result["promotion"]["promoted"] and result["promotion"]["to"] == best["version"]
    registry = RegistryClient(qbus)
    assert (await registry.aliases(model))["production"] == best["version"]
    # Retention: the best 3 keep their versions, and production's (ties may put it 4th).
    versions = [v async for v in registry.iter_versions(model, tags={"sweep": record.id})]
    assert 3 <= len(versions) <= 4 and best["version"] in {v.version for v in versions}
    # Each pruned trial takes its evaluation with it.
    assert len(result["pruned"]) == 2 * (12 - len(versions))
    evaluations = [v async for v in registry.iter_versions(f"{model}.evaluation")]
    assert len(evaluations) == len(versions)
    assert sum(bool(t.get("pruned")) for t in trials) == 12 - len(versions)
    own = [t for t in trials if t.get("ran_in") == "sweep"]
    assert len(own) == 2  # the last point of each round, trained by the sweep itself
    children = [await ExecutorClient(qbus).get(t["task_id"]) for t in trials if t not in own]
    assert len(children) == 10 and {c.parent_id for c in children} == {record.id}
    assert len({c.worker for c in children}) == 2, "children ran on one executor only"

    history = await QuantClient(qbus).trials(group=model, metric="sharpe")
    assert history.trials == 12 and history.best is not None
    # (ties are common: small alphas trade the same positions)
    assert history.best.metrics["sharpe"] == best["metrics"]["sharpe"]
    assert history.trend in ("improving", "stable", "declining")
    assert 0.01 <= float(history.recommended["alpha"]) <= 1000.0  # type: ignore[arg-type]
    # Trial records expire by themselves (QUANTOPS_QUANT_TRIALS_TTL_S).
    state = StateClient(qbus)
    keys = [k.key async for k in state.keys("trials", prefix=f"train_model.{model}.")]
    assert len(keys) == 12  # every trial's record stays, pruned version or not
    stored = await state.get_reply("trials", keys[0])
    assert stored.expires_at is not None
    assert abs(stored.expires_at - stored.updated_at - Settings().quant.trials_ttl_s) < 5
    assert "alpha" in history.parameters
    ats = [r.at for r in history.runs]
    assert ats == sorted(ats) and len(ats) == 12  # oldest first


async def test_failed_trials_are_kept_and_a_worse_best_is_not_promoted(qbus: Bus,
                                                                      unique: str) -> None:
    model = f"sweep2-{unique}"
    await run(qbus, "sweep", {**SMALL, "estimator": "ridge", "model_name": model,
                              "strategy": "grid", "promote": True,
                              "space": {"alpha": {"type": "choice", "values": [1.0]}}})
    record = await run(qbus, "sweep", {**SMALL, "estimator": "ridge", "model_name": model,
                                       "strategy": "grid", "promote": True,
                                       "min_improvement": 100.0,
                                       "space": {"alpha": {"type": "choice",
                                                           "values": [10.0, -1.0]}}})
    result = record.result
    assert isinstance(result, dict)
    assert result["succeeded"] == 1 and result["failed"] == 1
    failed = next(t for t in result["trials"] if t["status"] == "failed")
    assert failed["params"] == {"alpha": -1.0} and "alpha" in failed["error"]
    assert result["promotion"]["promoted"] is False
    assert (await RegistryClient(qbus).aliases(model))["production"] == 1


async def test_invalid_sweeps_are_refused_at_submission(qbus: Bus) -> None:
    client = ExecutorClient(qbus)
    for body, needle in (
            ({"estimator": "ridge", "space": {"max_depth": {"type": "choice",
                                                            "values": [1]}}}, "max_depth"),
            ({"estimator": "ridge", "space": SPACE, "metric": "luck"}, "luck"),
            ({"estimator": "os.system", "space": SPACE}, "os.system")):
        try:
            await client.submit("sweep", body)
        except Exception as e:
            assert needle in str(e)
        else:
            raise AssertionError(f"accepted {body}")

"""The ``ray`` engine: Ray Data, in-process on this machine or on a cluster.

    from_items(jobs) -> decode stage (actor pool, ``num_workers``, CPU fractions)
                     -> model stage (actor pool, ``model_actors``, the model loaded once each)
                     -> rows streamed back to the driver (``iter_rows``)

- The two stages are actor pools with their own resources, so Ray Data never fuses them:
  decoding overlaps inference.
- Each decode actor decodes through a one-process ``DecodePool``: a decoder that crashes or
  hangs becomes a per-video failure (retried once, stall limit), as with the local engine,
  instead of a failed Ray task. Errors are caught per video inside the stages; Ray's
  ``max_errored_blocks`` is never used (it drops whole blocks silently).
- Data on a cluster: the model travels through Ray's object store (its files' bytes, written
  to a temporary directory on each model actor's node), so it needs no shared storage.
  Videos are read where they are decoded: every node must see them at the same path (shared
  storage). A video a node cannot read is a per-video failure naming the node.
- Faults: a killed Ray worker is restarted by Ray (actors restart, tasks retry); a lost node's
  work is redone elsewhere. Whatever a pass loses (a dataset that fails outright), the driver
  runs again for the videos still missing, up to ``MAX_PASSES``; each video is yielded once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slowfast_deploy.engine._reaper import start_reaper
from slowfast_deploy.engine.base import (
    DecodedVideo,
    DecodeOptions,
    EngineOptions,
    ModelFacts,
    VideoFacts,
    VideoJob,
    VideoResult,
)
from slowfast_deploy.engine.pool import DecodePool
from slowfast_deploy.engine.scoring import check_model_views, score_stream
from slowfast_deploy.errors import BackendUnavailableError, Reason, SlowFastDeployError
from slowfast_deploy.runtime import ModelConfig, model_files
from slowfast_deploy.specs import ViewSpec

logger = logging.getLogger(__name__)

MAX_PASSES = 3
DECODE_CPUS = 0.25  # declared per decode actor: decoding is light beside the model
OBJECT_STORE_BYTES = 1536 * 2**20  # the embedded cluster's cap (Ray Data keeps within it)


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise BackendUnavailableError(
            f"--engine ray needs Ray Data, which is not installed ({err.name}); "
            "pip install 'slowfast-deploy[ray]'"
        ) from None
    return ray


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds, naming ``address``, when nothing listens there."""
    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise SlowFastDeployError(
            f"--ray-address {address}: no Ray cluster reachable there ({reason}); start one "
            "with `ray start --head`, or leave --ray-address and RAY_ADDRESS unset to run Ray "
            "in-process"
        ) from None


def _node_name() -> str:
    """``host/node-id``: several nodes may share a host (a loopback test cluster)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _info_json(reason: Reason | None, info: VideoFacts, **more: str) -> str:
    """A row's ``info`` column: the facts, with a failure's reason first (as in the record)."""
    return json.dumps({**({"reason": reason} if reason is not None else {}), **info, **more})


def _info_of(text: object) -> tuple[Reason | None, VideoFacts]:
    """``(reason, facts)`` of an ``info`` column."""
    info = json.loads(str(text or "{}"))
    reason = info.pop("reason", None)
    facts: VideoFacts = info
    return (Reason(reason) if reason is not None else None), facts


class DecodeStage:
    """A Ray Data actor: decode rows through a one-process ``DecodePool``."""

    def __init__(self, views: ViewSpec, decode: DecodeOptions, timeout_s: float | None) -> None:
        self.pool = DecodePool(views, decode, num_workers=1, timeout_s=timeout_s, depth=1)
        self.pool.__enter__()
        self.node = _node_name()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [VideoJob(str(k), str(p)) for k, p in zip(batch["key"], batch["path"], strict=True)]
        decoded = {d.job.key: d for d in self.pool.imap(jobs)}
        rows = [decoded[job.key] for job in jobs]
        crops = [b"" if d.crops is None else d.crops.tobytes() for d in rows]
        shapes = [[] if d.crops is None else list(d.crops.shape) for d in rows]
        errors = ["" if d.error is None else f"{d.error} (on node {self.node})" for d in rows]
        infos = [_info_json(d.reason, d.info, node=self.node) for d in rows]
        return {
            "key": np.array([d.job.key for d in rows], dtype=object),
            "path": np.array([d.job.path for d in rows], dtype=object),
            "crops": np.array(crops, dtype=object),
            "shape": np.array([json.dumps(s) for s in shapes], dtype=object),
            "error": np.array(errors, dtype=object),
            "info": np.array(infos, dtype=object),
            "decode_ms": np.array([d.decode_ms for d in rows]),
            "preprocess_ms": np.array([d.preprocess_ms for d in rows]),
        }

    def __del__(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()


class ModelStage:
    """A Ray Data actor: the model, opened once from files shipped in the object store."""

    def __init__(
        self, model: ModelConfig, files: list[Any], views: ViewSpec, batchsize: int
    ) -> None:
        import ray

        self._dir = tempfile.TemporaryDirectory(prefix="slowfast-model-")
        for name, data in ray.get(files[0]).items():  # [ref]: fetched here, on this node
            Path(self._dir.name, name).write_bytes(data)
        self.backend = model.at(Path(self._dir.name, Path(model.path).name)).open()
        self.views, self.batchsize = views, batchsize
        self.node = _node_name()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = []
        for i, key in enumerate(batch["key"]):
            shape = json.loads(batch["shape"][i])
            reason, info = _info_of(batch["info"][i])
            crops = np.frombuffer(batch["crops"][i], np.uint8).reshape(shape) if shape else None
            decoded.append(
                DecodedVideo(
                    VideoJob(str(key), str(batch["path"][i])),
                    crops,
                    str(batch["error"][i]) or None,
                    decode_ms=float(batch["decode_ms"][i]),
                    preprocess_ms=float(batch["preprocess_ms"][i]),
                    info=info,
                    reason=reason,
                )
            )
        try:
            results = {
                r.job.key: r
                for r in score_stream(decoded, self.backend, self.views, batchsize=self.batchsize)
            }
        except Exception as err:  # a model failure fails these videos, never the run
            results = {
                d.job.key: VideoResult(
                    d.job, None, f"{d.job.path}: model failed on node {self.node}: {err}"
                )
                for d in decoded
            }
        out = [results[d.job.key] for d in decoded]
        return {
            "key": np.array([r.job.key for r in out], dtype=object),
            "scores": np.array(
                [b"" if r.scores is None else r.scores.astype(np.float32).tobytes() for r in out],
                dtype=object,
            ),
            "error": np.array([r.error or "" for r in out], dtype=object),
            "info": np.array(
                [_info_json(r.reason, r.info, model_node=self.node) for r in out], dtype=object
            ),
            "num_views": np.array([r.num_views for r in out]),
            "decode_ms": np.array([r.decode_ms for r in out]),
            "preprocess_ms": np.array([r.preprocess_ms for r in out]),
            "infer_ms": np.array([r.infer_ms for r in out]),
        }


class RayEngine:
    """Decode and model stages on Ray Data; see the module docstring."""

    name = "ray"

    def __init__(
        self,
        model: ModelConfig | None,
        views: ViewSpec,
        decode: DecodeOptions,
        options: EngineOptions,
    ) -> None:
        self.model, self.views, self.decode_options, self.options = model, views, decode, options
        self.stats: dict[str, int] = {"passes": 0, "failed_passes": 0}
        self._owns_ray = False
        self._reaper: Any = None
        self._started = False
        self._model_ref: Any = None
        self._resources: dict[str, float] = {}
        self._info: ModelFacts = {}

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        quiet = not logger.isEnabledFor(logging.DEBUG)  # Ray's own log lines only with -vv
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        if not self.options.ray_address:  # Ray on this machine only: loopback (read at import)
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = _ray()
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*ray_remote_args")
        if not ray.is_initialized():
            common = {
                "logging_level": logging.ERROR,
                "log_to_driver": False,
                "configure_logging": True,
            }
            if self.options.ray_address:
                check_reachable(self.options.ray_address)
                ray.init(address=self.options.ray_address, **common)
            else:
                ray.init(
                    address="local",
                    _node_ip_address="127.0.0.1",  # this machine only: loopback
                    num_cpus=os.cpu_count() or 1,
                    include_dashboard=False,
                    object_store_memory=OBJECT_STORE_BYTES,
                    **common,
                )
                self._reaper = start_reaper()  # Ray's processes die with this driver
            self._owns_ray = True
        from ray.data import DataContext

        if quiet:
            for name in ("ray", "ray.data"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        context = DataContext.get_current()
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self._resources = self._check_resources(ray)
        if self.model is not None:
            files = {p.name: p.read_bytes() for p in model_files(self.model.path)}
            self._model_ref = ray.put(files)
            probe = self.model.open()  # fail fast (bad model, shape) before any decoding
            try:
                check_model_views(probe, self.views)
                self._info = {
                    "backend": probe.info.name,
                    "precision": probe.info.precision,
                    "device": probe.info.device,
                }
            finally:
                probe.close()
        self._started = True

    def _check_resources(self, ray: Any) -> dict[str, float]:
        """Declared amounts that fit the cluster, or a clear error (never an endless wait)."""
        total = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = float(total.get("CPU", 0.0))
        biggest = max((float(n["Resources"].get("CPU", 0.0)) for n in nodes), default=0.0)
        workers = max(1, self.options.workers)
        need_decode = workers * DECODE_CPUS
        resources = {"decode_cpus": DECODE_CPUS}
        if self.model is not None:
            threads = self.model.threads or 1
            actor_cpus = max(0.5, min(float(threads), biggest - DECODE_CPUS))
            actors = self.options.model_actors
            need = actors * actor_cpus + need_decode
            if need > cpus + 1e-9 or actor_cpus > biggest:
                raise SlowFastDeployError(
                    f"the Ray cluster has {cpus:g} CPUs (largest node {biggest:g}) but this run "
                    f"needs {need:g}: {actors} model actor(s) x {actor_cpus:g} + {workers} "
                    f"decoder(s) x {DECODE_CPUS:g}; lower --model-actors, --threads or "
                    "--num-workers, or add nodes"
                )
            gpus = float(total.get("GPU", 0.0))
            if self.model.device == "cuda" and gpus < actors:
                raise SlowFastDeployError(
                    f"the Ray cluster has {gpus:g} GPUs but --device cuda needs one per model "
                    f"actor ({actors}); lower --model-actors or add GPU nodes"
                )
            resources["model_cpus"] = actor_cpus
        elif need_decode > cpus:
            raise SlowFastDeployError(
                f"the Ray cluster has {cpus:g} CPUs but {workers} decoders need {need_decode:g}"
            )
        return resources

    def describe(self) -> ModelFacts:
        self.start()
        return {**self._info, "ray_nodes": len(self._alive_nodes())}

    def _alive_nodes(self) -> list[Any]:
        import ray

        return [n for n in ray.nodes() if n.get("Alive")]

    # -- the pipeline -----------------------------------------------------------------------
    def _dataset(self, jobs: list[VideoJob], *, with_model: bool) -> Any:
        import ray.data
        from ray.data import ActorPoolStrategy

        items = [{"key": job.key, "path": job.path} for job in jobs]
        ds: Any = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        ds = ds.map_batches(
            DecodeStage,
            fn_constructor_kwargs={
                "views": self.views,
                "decode": self.decode_options,
                "timeout_s": self.options.decode_timeout_s,
            },
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(
                size=max(1, self.options.workers), max_tasks_in_flight_per_actor=2
            ),
            num_cpus=self._resources["decode_cpus"],
            scheduling_strategy="SPREAD",  # decoders on every node: each reads its videos
        )
        if not with_model:
            return ds
        assert self.model is not None
        videos_per_call = max(1, -(-self.options.batchsize // self.views.num_views))
        return ds.map_batches(
            ModelStage,
            fn_constructor_kwargs={
                "model": self.model,
                "files": [self._model_ref],
                "views": self.views,
                "batchsize": self.options.batchsize,
            },
            batch_size=videos_per_call,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=self.options.model_actors),
            num_cpus=self._resources["model_cpus"],
            num_gpus=1 if self.model.device == "cuda" else 0,
        )

    def _passes(
        self, jobs: Iterable[VideoJob], *, with_model: bool
    ) -> Iterator[tuple[VideoJob, dict[str, Any]]]:
        """Rows of the dataset, each job once; passes again over what a failed pass lost."""
        self.start()
        remaining = {job.key: job for job in jobs}
        last_error = ""
        for _ in range(MAX_PASSES):
            if not remaining:
                return
            self.stats["passes"] += 1
            try:
                for row in self._dataset(
                    list(remaining.values()), with_model=with_model
                ).iter_rows():
                    job = remaining.pop(str(row["key"]), None)
                    if job is not None:  # a row seen twice (a retried block) is dropped
                        yield job, row
            except Exception as err:  # a failed pass: what it lost runs again
                self.stats["failed_passes"] += 1
                last_error = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                logger.warning(
                    "Ray pass failed (%s); %d videos run again", last_error, len(remaining)
                )
                time.sleep(1.0)
        for job in remaining.values():
            yield (
                job,
                {
                    "key": job.key,
                    "error": f"{job.path}: the Ray cluster failed it {MAX_PASSES} times "
                    f"({last_error}); rerun to retry",
                    "info": _info_json(Reason.ENGINE_FAILED, {}),
                },
            )

    def run(self, jobs: Iterable[VideoJob]) -> Iterator[VideoResult]:
        for job, row in self._passes(jobs, with_model=True):
            reason, info = _info_of(row.get("info"))
            scores = row.get("scores") or b""
            if not scores:
                error = str(row.get("error") or "failed")
                yield VideoResult(job, None, error, info=info, reason=reason)
                continue
            yield VideoResult(
                job,
                np.frombuffer(scores, np.float32).copy(),
                None,
                int(row["num_views"]),
                float(row["decode_ms"]),
                float(row["preprocess_ms"]),
                float(row["infer_ms"]),
                info,
            )

    def decode(self, jobs: Iterable[VideoJob]) -> Iterator[DecodedVideo]:
        for job, row in self._passes(jobs, with_model=False):
            reason, info = _info_of(row.get("info"))
            shape = json.loads(row.get("shape") or "[]")
            if not shape:
                error = str(row.get("error") or "failed")
                yield DecodedVideo(job, None, error, info=info, reason=reason)
                continue
            crops = np.frombuffer(row["crops"], np.uint8).reshape(shape)
            yield DecodedVideo(
                job,
                crops,
                None,
                decode_ms=float(row["decode_ms"]),
                preprocess_ms=float(row["preprocess_ms"]),
                info=info,
            )

    def close(self) -> None:
        self._model_ref = None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
        if self._reaper is not None:
            self._reaper.terminate()
            self._reaper.wait()
            self._reaper = None
        self._started = False

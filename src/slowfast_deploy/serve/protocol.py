"""What requests ask and what responses say: parsed once, bad input turned into a ``Problem``
here (vLLM's ``protocol.py``).

Plain data and pure parsers over what any ASGI framework hands over (query parameters and
headers as mappings, the body as an async iterator of bytes); the routes (``routes``) call
them, the service (``service``) takes the parsed values.

| schema            | from                                                          |
| ----------------- | ------------------------------------------------------------- |
| ``ModelRef``      | ``/v2/models/{name}[/versions/{version}]``                      |
| ``PredictQuery``  | ``/v1/predict?views=&topk=``                                    |
| ``TimelineQuery`` | ``/v1/timeline?window=&stride=&smooth=&threshold=&topk=&format=``|
| ``VideoSource``   | a video body: an upload, ``{"path": ...}`` or ``{"url": ...}``   |
| ``ModelFacts``    | what the model takes and answers (``/v2`` metadata, ``/v1/info``)|
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast, get_args

from slowfast_deploy import __version__
from slowfast_deploy.errors import Reason
from slowfast_deploy.labels import names_for
from slowfast_deploy.serve import kserve
from slowfast_deploy.serve.problems import Problem
from slowfast_deploy.serve.uploads import read_body
from slowfast_deploy.specs import VIEWS
from slowfast_deploy.timeline.output import SegmentOptions, render_timelines
from slowfast_deploy.timeline.run import VideoTimeline
from slowfast_deploy.timeline.windows import WindowPlan

TimelineFormat = Literal["json", "csv", "srt"]
TIMELINE_MEDIA_TYPES: dict[TimelineFormat, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "srt": "application/x-subrip",
}
MAX_JSON_BYTES = 64 * 1024  # a JSON request (a path, a URL, a stream): small
SERVER_METADATA = {
    "name": "slowfast-deploy",
    "version": __version__,
    "extensions": ["binary_tensor_data"],
}


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the served model takes and answers, found when it opened."""

    name: str  # in /v2/models/{name}
    backend: str  # the backend's name (onnxruntime, openvino, torch)
    precision: str
    input: kserve.TensorSpec
    output: kserve.TensorSpec
    num_classes: int
    views: dict[int, str | None]  # protocol -> None if the model takes it, else why not

    def check_topk(self, topk: int) -> None:
        if not 1 <= topk <= self.num_classes:
            raise Problem(Reason.INVALID, f"topk must be in 1..{self.num_classes}, got {topk}")

    def info(self, *, labels: bool, max_upload_bytes: int, max_batch: int) -> dict[str, object]:
        """``/v1/info``: the model and the limits, for the page."""
        return {
            "name": self.name,
            "backend": self.backend,
            "precision": self.precision,
            "num_classes": self.num_classes,
            "labels": labels,
            "views": [v for v, why in self.views.items() if why is None],
            "max_upload_bytes": max_upload_bytes,
            "max_batch": max_batch,
            "streams": True,
        }


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as err:
        raise Problem(Reason.INVALID, f"{name} must be an integer, got {value!r}") from err


def float_param(params: Mapping[str, str], name: str, default: float) -> float:
    value = params.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as err:
        raise Problem(Reason.INVALID, f"{name} must be a number, got {value!r}") from err


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The model a ``/v2/models/...`` path names; this server has one, version 1."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, path_params: Mapping[str, Any], served: str) -> ModelRef:
        ref = cls(str(path_params["name"]), path_params.get("version"))
        if ref.name != served or ref.version not in (None, "1"):
            shown = ref.name if ref.version is None else f"{ref.name} version {ref.version}"
            raise Problem(
                Reason.UNKNOWN_MODEL,
                f"unknown model {shown!r}; this server has {served!r} (version 1)",
            )
        return ref


@dataclass(frozen=True, slots=True)
class PredictQuery:
    """``/v1/predict``: ``views`` (1 or 30, as ``predict --views``) and ``topk``."""

    views: int = 1
    topk: int = 5

    @classmethod
    def parse(cls, params: Mapping[str, str], model: ModelFacts) -> PredictQuery:
        views = int_param(params, "views", 1)
        topk = int_param(params, "topk", 5)
        if views not in VIEWS:
            raise Problem(Reason.INVALID, f"views must be one of {sorted(VIEWS)}, got {views}")
        model.check_topk(topk)
        if model.views[views] is not None:
            raise Problem(Reason.INVALID, str(model.views[views]))
        return cls(views, topk)


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    """``/v1/timeline``: the windows, the segments and the output, as ``timeline``'s flags."""

    plan: WindowPlan
    segments: SegmentOptions
    topk: int
    format: TimelineFormat

    @classmethod
    def parse(cls, params: Mapping[str, str], model: ModelFacts) -> TimelineQuery:
        fmt = params.get("format", "json")
        if fmt not in get_args(TimelineFormat):
            raise Problem(
                Reason.INVALID, f"format must be one of {sorted(TIMELINE_MEDIA_TYPES)}, got {fmt!r}"
            )
        try:  # the library's checks name the value and the range
            plan = WindowPlan(int_param(params, "window", 64), int_param(params, "stride", 16))
            segments = SegmentOptions(
                int_param(params, "smooth", 1), float_param(params, "threshold", 0.0)
            )
        except ValueError as err:
            raise Problem(Reason.INVALID, str(err)) from err
        topk = int_param(params, "topk", 5)
        model.check_topk(topk)
        return cls(plan, segments, topk, cast(TimelineFormat, fmt))

    @property
    def media_type(self) -> str:
        return TIMELINE_MEDIA_TYPES[self.format]

    def render(self, timeline: VideoTimeline, labels: Sequence[str] | None) -> str:
        """``timeline``'s output in this format (``timeline.output``, as the CLI writes it)."""
        names = names_for(labels, len(timeline.records[0].scores)) if timeline.records else None
        return render_timelines(
            [timeline], fmt=self.format, topk=self.topk, segments=self.segments, labels=names
        )[0]


@dataclass(frozen=True, slots=True)
class ServerPath:
    """``{"path": ...}``: a file on the server (accepted under ``--allow-dir`` only)."""

    path: str


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """``{"url": ...}``: a video the server fetches (under ``--allow-url`` only)."""

    url: str


@dataclass(frozen=True, slots=True)
class UploadedVideo:
    """A ``multipart/form-data`` body with the video in the field ``video``, not read yet."""

    stream: AsyncIterator[bytes]
    headers: Mapping[str, str]


VideoSource: TypeAlias = ServerPath | RemoteVideo | UploadedVideo


@dataclass(frozen=True, slots=True)
class StreamOutputs:
    """Where a served stream's events go besides its event stream, as ``watch``'s flags:
    ``webhook`` (``--webhook``: segment events POSTed as JSON; under ``--allow-url``),
    ``srt_dir`` (``--srt-dir``: ``<name>.srt``, a subtitle per segment; under
    ``--allow-dir``) and ``mqtt`` (``--mqtt``: every event to ``mqtt://HOST:PORT/PREFIX``;
    under ``--allow-url``). ``POST /v1/streams`` takes them beside ``source`` and ``name``."""

    webhook: str | None = None
    srt_dir: str | None = None
    mqtt: str | None = None

    @classmethod
    def parse(cls, spec: Any) -> StreamOutputs:
        if not isinstance(spec, dict):
            return cls()  # the registry answers what is wrong with the request
        for key in ("webhook", "srt_dir", "mqtt"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise Problem(Reason.BAD_REQUEST, f"{key} must be a string, got {spec[key]!r}")
        return cls(spec.get("webhook"), spec.get("srt_dir"), spec.get("mqtt"))


def _is_json(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def read_json(stream: AsyncIterator[bytes], headers: Mapping[str, str]) -> Any:
    """A small JSON body (at most ``MAX_JSON_BYTES``), else a ``bad_request`` (413 if larger)."""
    body = await read_body(stream, headers, MAX_JSON_BYTES)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Problem(Reason.BAD_REQUEST, f"the request body is not valid JSON ({err})") from err


async def read_video_source(
    stream: AsyncIterator[bytes], headers: Mapping[str, str]
) -> VideoSource:
    """The video a request names: JSON ``{"path"}`` or ``{"url"}``, else an upload."""
    if not _is_json(headers):
        return UploadedVideo(stream, headers)
    spec = await read_json(stream, headers)
    if not isinstance(spec, dict) or len({"path", "url"} & set(spec)) != 1:
        raise Problem(
            Reason.BAD_REQUEST, 'send {"path": ...} or {"url": ...} (or upload the video)'
        )
    if "path" in spec:
        return ServerPath(str(spec["path"]))
    return RemoteVideo(str(spec["url"]))


def check_identity_encoding(headers: Mapping[str, str]) -> None:
    """An ``infer`` body is read as it comes: a compressed one is refused (415)."""
    if headers.get("content-encoding", "identity") != "identity":
        raise Problem(
            Reason.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {headers['content-encoding']!r} is not accepted; "
            "send the request uncompressed",
        )


def declared_size(headers: Mapping[str, str], limit: int) -> int:
    """The bytes a body will take in memory: its ``Content-Length``, at most ``limit``."""
    declared = headers.get("content-length", "")
    return min(int(declared) if declared.isdigit() else limit, limit)


async def read_infer(
    stream: AsyncIterator[bytes], headers: Mapping[str, str], spec: kserve.TensorSpec, limit: int
) -> kserve.InferRequest:
    """A v2 inference request (JSON or binary), its tensor checked against ``spec``."""
    body = await read_body(stream, headers, limit)
    return kserve.parse_infer(body, headers.get(kserve.HEADER_LENGTH), spec)


__all__ = [
    "ModelFacts",
    "ModelRef",
    "PredictQuery",
    "RemoteVideo",
    "ServerPath",
    "StreamOutputs",
    "TimelineQuery",
    "UploadedVideo",
    "VideoSource",
    "read_infer",
    "read_json",
    "read_video_source",
]

"""Nested request settings, as the official SDK (`predibase` 2025.10.3) names them.

GRPO sampling parameters and reward functions, training and serving compute specs, and a
batch inference job's server configuration. Every model here refuses fields it does not
know (a typo in a nested setting fails before a GPU is asked for) and infinite or NaN
numbers (JSON cannot carry them).

Secret settings (`hf_token`, GRPO `secrets`) are `SecretText`: their repr shows
``'**********'`` so a log line, a traceback or an exception never prints them, while
`model_dump()` (the wire body) carries the value itself.
"""

from __future__ import annotations

import ast
import base64
import binascii
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

Quantization = Literal["none", "fp8", "bitsandbytes-nf4"]
QUANTIZATIONS: tuple[str, ...] = ("none", "fp8", "bitsandbytes-nf4")
Backend = Literal["v1", "v2", "v3"]
BACKENDS: tuple[str, ...] = ("v1", "v2", "v3")

#: A secret setting: masked in repr and errors, the value itself in `model_dump()`.
SecretText = Annotated[
    SecretStr, PlainSerializer(lambda value: value.get_secret_value(), return_type=str)
]
#: Request fields that hold secrets, wherever they appear (never logged, hashed or stored).
SECRET_FIELDS: frozenset[str] = frozenset({"hf_token", "secrets"})

#: How many arguments a reward function takes: (prompt, completion, example).
REWARD_FUNCTION_ARITY = 3


class ConfigModel(BaseModel):
    """A nested setting: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())


# -- GRPO ---------------------------------------------------------------------------------


class SamplingParams(ConfigModel):
    """How GRPO samples completions (the SDK's `SamplingParamsConfig`)."""

    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(
        default=None, ge=-1, description="Top-k sampling; -1 disables it (0 is not valid)."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Longest completion.")

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("top_k must be -1 (disabled) or at least 1")
        return value


def _reward_source(fn: Callable[..., Any], name: str) -> str:
    """The source the SDK encodes for `fn`, after the SDK's checks (plus: it must parse on
    its own, as the trainer recompiles it from the source alone)."""
    if not getattr(fn, "__name__", None):
        raise ValueError(f"reward function {name!r} is not a function or is missing a name")
    if not inspect.isfunction(fn):
        raise ValueError(
            f"reward function {name!r} must be a Python function (def), got {type(fn).__name__}"
        )
    params = inspect.signature(fn).parameters
    if len(params) != REWARD_FUNCTION_ARITY:
        raise ValueError(
            f"reward function {name!r} takes {len(params)} argument(s) ({', '.join(params)}); "
            f"expected {REWARD_FUNCTION_ARITY}: (prompt, completion, example)"
        )
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError) as error:
        raise ValueError(f"reward function {name!r}: its source cannot be read ({error})") from None
    _check_source(source, name)
    return source


def _check_source(source: str, name: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise ValueError(
            f"reward function {name!r} must be a module-level function (a lambda or a nested "
            "or indented def cannot be recompiled from its source alone)"
        ) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise ValueError(
            f"reward function {name!r} must be one module-level def (a lambda or other code "
            "cannot be recompiled from its source alone)"
        )


def encode_reward_function(fn: Callable[..., Any], name: str | None = None) -> str:
    """`fn` as the platform takes it: base64 of its source, exactly as the SDK's
    `RewardFunction.from_callable` encodes it."""
    source = _reward_source(fn, name or getattr(fn, "__name__", "") or repr(fn))
    return base64.b64encode(source.encode("utf-8")).decode("utf-8")


def is_import_path(value: str) -> bool:
    """`value` reads as ``package.module:function`` or ``package.module.function``."""
    module, _, attribute = value.partition(":") if ":" in value else value.rpartition(".")
    parts = [*module.split("."), *attribute.split(".")]
    return bool(module and attribute) and all(part.isidentifier() for part in parts)


def import_reward_function(path: str) -> Callable[..., Any]:
    """The function an import path names: ``pkg.module:function`` (or dotted,
    ``pkg.module.function``). ValueError says what could not be imported."""
    if not is_import_path(path):
        raise ValueError(
            f"{path!r} is not an import path: write 'package.module:function' or "
            "'package.module.function'"
        )
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} for {path!r}: {error}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{path!r} is a {type(target).__name__}, not a function")
    return target  # type: ignore[no-any-return]


def function_name(value: Any) -> str:
    """The name a reward function is registered under in a list: its ``__name__``, or the
    last part of its import path."""
    if isinstance(value, str):
        return value.replace(":", ".").rpartition(".")[2]
    name = getattr(value, "__name__", None)
    if not name:
        raise ValueError(f"reward function {value!r} has no name: give them as a mapping")
    return str(name)


class RewardFunction(ConfigModel):
    """One reward function, as its base64-encoded source (the SDK's `RewardFunction`).

    Built from a function (`from_callable`) or an import path (`from_import_path`); a plain
    callable or an import path string validates into one too.
    """

    encoded_fn: str = Field(min_length=1, description="base64 of the function's source.")

    @model_validator(mode="before")
    @classmethod
    def _from_callable_or_path(cls, value: Any) -> Any:
        if callable(value) and not isinstance(value, type):
            return {"encoded_fn": encode_reward_function(value)}
        if isinstance(value, str):
            return {"encoded_fn": encode_reward_function(import_reward_function(value), value)}
        return value

    @field_validator("encoded_fn")
    @classmethod
    def _decodes_to_a_function(cls, value: str) -> str:
        try:
            source = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("must be base64 of UTF-8 Python source") from None
        _check_source(source, "encoded_fn")
        return value

    @classmethod
    def from_callable(cls, fn: Callable[..., Any]) -> RewardFunction:
        return cls(encoded_fn=encode_reward_function(fn))

    @classmethod
    def from_import_path(cls, path: str) -> RewardFunction:
        return cls(encoded_fn=encode_reward_function(import_reward_function(path), path))

    @property
    def source(self) -> str:
        """The function's source code."""
        return base64.b64decode(self.encoded_fn).decode("utf-8")

    def __repr__(self) -> str:
        return f"RewardFunction(encoded_fn={self.encoded_fn[:30]!r}...)"


class RewardFunctionsRuntime(ConfigModel):
    """What the reward functions need installed (the SDK's `RewardFunctionsRuntimeConfig`)."""

    packages: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="pip requirements, e.g. 'rapidfuzz==3.9.0'."
    )


class RewardFunctions(ConfigModel):
    """GRPO reward functions by name, and their runtime (the SDK's `RewardFunctionsConfig`).

    `functions` also takes a list (each function is named by its ``__name__``, or the last
    part of its import path), and each value a function, an import path or an encoded one.
    """

    runtime: RewardFunctionsRuntime | None = Field(default=None, description="Packages.")
    functions: dict[Annotated[str, Field(min_length=1)], RewardFunction] = Field(
        min_length=1, description="Name -> reward function."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = {"functions": value}
        if isinstance(value, Mapping) and isinstance(value.get("functions"), list | tuple):
            functions = {function_name(fn): fn for fn in value["functions"]}
            if len(functions) != len(value["functions"]):
                raise ValueError("two reward functions have the same name: give them as a mapping")
            value = {**value, "functions": functions}
        return value


# -- compute ------------------------------------------------------------------------------


class ComputeRequest(ConfigModel):
    """One compute request: a SKU (the server lists the valid ones when one is unknown)."""

    sku: str = Field(min_length=1, description="Hardware SKU, e.g. a100_80gb_100.")


class TrainingComputeRequests(ConfigModel):
    """What a training job asks for (the SDK's `TrainingComputeRequests`)."""

    trainer: ComputeRequest = Field(description="The trainer's hardware.")


class TrainingComputeSpec(ConfigModel):
    """Where and on what a fine-tuning job trains (the SDK's `TrainingComputeSpec`)."""

    region: str | None = Field(default=None, min_length=1, description="Cloud region.")
    requests: TrainingComputeRequests | None = Field(default=None, description="Hardware.")


class ServingComputeRequests(ConfigModel):
    """What a deployment asks for (the SDK's `ServingComputeRequests`)."""

    inference: ComputeRequest = Field(description="The serving hardware.")


class ServingComputeSpec(ConfigModel):
    """Where and on what a deployment serves (the SDK's `ServingComputeSpec`)."""

    requests: ServingComputeRequests = Field(description="Hardware.")
    region: str | None = Field(default=None, min_length=1, description="Cloud region.")


# -- batch inference ----------------------------------------------------------------------


class BatchInferenceServerConfig(ConfigModel):
    """The server a batch inference job runs on (the SDK's beta
    `BatchInferenceServerConfig`); its fields sit flat on `BatchInferenceJobRequest`."""

    base_model: str = Field(min_length=1, description="Base model to serve.")
    custom_args: list[str] | None = Field(default=None, description="Extra LoRAX arguments.")
    hf_token: SecretText | None = Field(default=None, description="Hugging Face token.")
    lorax_image_tag: str | None = Field(default=None, min_length=1, description="LoRAX image.")
    quantization: Quantization | None = Field(default=None, description="none, fp8, nf4.")
    backend: Backend | None = Field(default=None, description="Serving backend: v1, v2, v3.")

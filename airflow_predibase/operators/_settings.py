"""Settings the operators take beyond plain JSON values: secrets held in Airflow, and GRPO
reward functions. Also the one way a pydantic error becomes a message that names the field
and never prints a secret.

Secrets. A secret setting (``hf_token``, the values of GRPO ``secrets``) is never a literal
in the DAG nor a template: a literal sits in the DAG file, and a template renders into the
task's rendered fields. It is an `AirflowSecret` reference, resolved on the worker when the
task runs, masked in every log from then on, and kept out of XCom, trigger kwargs,
lineage, the idempotency hash and error messages.

Reward functions. A function given in the DAG is encoded when the operator is built (base64
of its source, as the SDK encodes it), so what the operator holds is JSON; an import path
is kept as text and imported on the worker when the task runs, not when the DAG is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

#: Fields whose values are secrets, wherever they sit (the models' `SECRET_FIELDS`).
SECRET_FIELDS = frozenset({"hf_token", "secrets"})
#: What a secret is replaced with where its value must not go (hashes, lineage).
REDACTED = "<secret>"

_CONNECTION_FIELDS = ("password", "login", "host", "schema")


@dataclass(frozen=True)
class AirflowSecret:
    """A secret kept in Airflow, read when the task runs.

    ``AirflowSecret.connection("huggingface")`` is the connection's password (``field=``
    picks ``login``, ``host``, ``schema`` or ``extra.<key>`` instead);
    ``AirflowSecret.variable("hf_token")`` is a Variable. As a mapping (in a JSON config):
    ``{"conn_id": "huggingface"}``, ``{"conn_id": ..., "field": "extra.token"}`` or
    ``{"variable": "hf_token"}``.
    """

    conn_id: str | None = None
    field: str = "password"
    variable_key: str | None = None

    def __post_init__(self) -> None:
        if (self.conn_id is None) == (self.variable_key is None):
            raise ValueError("an AirflowSecret names either a connection or a Variable")
        name = self.conn_id if self.conn_id is not None else self.variable_key
        if not isinstance(name, str) or not name.strip() or "{{" in name:
            raise ValueError(
                f"an AirflowSecret needs a plain connection ID or Variable key, got {name!r}"
            )
        if self.conn_id is not None and not (
            self.field in _CONNECTION_FIELDS
            or (self.field.startswith("extra.") and len(self.field) > len("extra."))
        ):
            raise ValueError(
                f"field={self.field!r} is not a connection field; choose one of: "
                f"{', '.join(_CONNECTION_FIELDS)}, extra.<key>"
            )

    @classmethod
    def connection(cls, conn_id: str, field: str = "password") -> AirflowSecret:
        """The secret in a connection: its password, or another `field`."""
        return cls(conn_id=conn_id, field=field)

    @classmethod
    def variable(cls, key: str) -> AirflowSecret:
        """The secret in an Airflow Variable."""
        return cls(variable_key=key)

    @classmethod
    def parse(cls, value: Any, where: str) -> AirflowSecret:
        """`value` as a reference, or ValueError naming `where` (never echoing a value)."""
        if isinstance(value, AirflowSecret):
            return value
        if isinstance(value, Mapping):
            keys = set(value)
            try:
                if keys <= {"conn_id", "field"} and "conn_id" in keys:
                    return cls.connection(value["conn_id"], value.get("field", "password"))
                if keys == {"variable"}:
                    return cls.variable(value["variable"])
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        raise ValueError(
            f"{where} must come from Airflow, not be written in the DAG or a template: pass "
            "AirflowSecret.connection('<conn_id>') (its password) or "
            "AirflowSecret.variable('<key>'), or the mapping {'conn_id': ...} or "
            f"{{'variable': ...}} (got a {type(value).__name__})"
        )

    def resolve(self, where: str) -> str:
        """The secret, masked in all logs from now on; ValueError naming `where` if it is
        missing (the message names the connection or Variable, never a value)."""
        value = self._read(where)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}: {self} is empty or not text")
        from airflow.sdk.log import mask_secret

        mask_secret(value)
        return value

    def _read(self, where: str) -> Any:
        if self.variable_key is not None:
            from airflow.sdk import Variable

            value = Variable.get(self.variable_key, default=None)
            if value is None:
                raise ValueError(f"{where}: the Airflow Variable {self.variable_key!r} is not set")
            return value
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(str(self.conn_id))
        except Exception as error:  # AirflowNotFoundException, or the API's own error
            raise ValueError(
                f"{where}: cannot read Airflow connection {self.conn_id!r} ({type(error).__name__})"
            ) from None
        if self.field.startswith("extra."):
            return (conn.extra_dejson or {}).get(self.field.removeprefix("extra."))
        return getattr(conn, self.field, None)

    def __str__(self) -> str:
        if self.variable_key is not None:
            return f"Airflow Variable {self.variable_key!r}"
        return f"the {self.field} of Airflow connection {self.conn_id!r}"

    def __repr__(self) -> str:
        if self.variable_key is not None:
            return f"AirflowSecret.variable({self.variable_key!r})"
        field = "" if self.field == "password" else f", field={self.field!r}"
        return f"AirflowSecret.connection({self.conn_id!r}{field})"


def parse_secrets(value: Any, where: str = "secrets") -> dict[str, AirflowSecret] | None:
    """GRPO `secrets`: name -> AirflowSecret (each value checked, none resolved)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping of name -> AirflowSecret")
    parsed: dict[str, AirflowSecret] = {}
    for name, ref in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: every secret needs a non-empty name, got {name!r}")
        parsed[name] = AirflowSecret.parse(ref, f"{where}.{name}")
    return parsed


# -- reward functions ---------------------------------------------------------------------


def prepare_reward_fns(value: Any, where: str = "reward_fns") -> Any:
    """What the operator keeps of `reward_fns`: JSON only, checked without importing.

    Functions are encoded now; import paths stay text (imported by `resolve_reward_fns` on
    the worker); encoded functions (``{"encoded_fn": ...}``) are kept. Accepts a list, a
    mapping name -> function, or ``{"functions": ..., "runtime": {"packages": [...]}}``.
    """
    from airflow_predibase.client.models.configs import (
        RewardFunction,
        RewardFunctionsRuntime,
        encode_reward_function,
        function_name,
        is_import_path,
    )

    if value is None or _templated(value):
        return value
    if isinstance(value, Mapping) and "functions" in value:
        unknown = sorted(set(value) - {"functions", "runtime"})
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; valid keys: functions, runtime")
        prepared: dict[str, Any] = {"functions": prepare_reward_fns(value["functions"], where)}
        runtime = value.get("runtime")
        if runtime is not None and not _templated(runtime):
            runtime = RewardFunctionsRuntime.model_validate(runtime).model_dump(exclude_none=True)
        if runtime is not None:
            prepared["runtime"] = runtime
        return prepared
    if isinstance(value, list | tuple):
        named: dict[str, Any] = {}
        for index, fn in enumerate(value):
            if isinstance(fn, str) and not _templated(fn) and not is_import_path(fn):
                raise ValueError(
                    f"{where}[{index}]={fn!r} is not an import path: write "
                    "'package.module:function' or 'package.module.function'"
                )
            name = fn if _templated(fn) else function_name(fn)
            if name in named:
                raise ValueError(
                    f"{where}: two reward functions are named {name!r}; give them as a mapping"
                )
            named[name] = fn
        value = named
    if not isinstance(value, Mapping) or not value:
        raise ValueError(
            f"{where} must be a non-empty list of functions or import paths, or a mapping "
            "name -> function"
        )
    functions: dict[str, Any] = {}
    for name, fn in value.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: reward function names must be non-empty text")
        if isinstance(fn, str):
            if not _templated(fn) and not is_import_path(fn):
                raise ValueError(
                    f"{at}={fn!r} is not an import path: write 'package.module:function' or "
                    "'package.module.function'"
                )
            functions[name] = fn
        elif callable(fn):
            functions[name] = {"encoded_fn": _encode(encode_reward_function, fn, name, at)}
        else:
            try:
                functions[name] = RewardFunction.model_validate(fn).model_dump()
            except Exception as error:
                raise ValueError(f"{at}: {_first_reason(error)}") from None
    return functions


def _encode(encode: Callable[..., str], fn: Any, name: str, at: str) -> str:
    try:
        return encode(fn, name)
    except ValueError as error:
        raise ValueError(f"{at}: {error}") from None


def resolve_reward_fns(value: Any, where: str = "reward_fns") -> dict[str, Any] | None:
    """`reward_fns` as the request takes it, import paths imported and encoded (on the
    worker, when the task runs)."""
    from airflow_predibase.client.models.configs import (
        encode_reward_function,
        import_reward_function,
    )

    if value is None:
        return None
    prepared = prepare_reward_fns(value, where)
    functions = prepared.get("functions", prepared)
    encoded: dict[str, Any] = {}
    for name, fn in functions.items():
        if isinstance(fn, str):
            at = f"{where}.{name}"
            try:
                target = import_reward_function(fn)
            except ValueError as error:
                raise ValueError(f"{at}: {error}") from None
            fn = {"encoded_fn": _encode(encode_reward_function, target, name, at)}
        encoded[name] = fn
    result: dict[str, Any] = {"functions": encoded}
    if "runtime" in prepared:
        result["runtime"] = prepared["runtime"]
    return result


# -- errors and redaction -----------------------------------------------------------------


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(part in SECRET_FIELDS for part in loc)


def explain(error: ValidationError, *, default: str = "request") -> str:
    """A pydantic error as ``field=value is not valid: why``, naming each field; the value
    is shown only when it is a plain scalar of a field that is not secret."""
    parts = []
    for item in error.errors():
        loc = tuple(item["loc"])
        field = ".".join(str(part) for part in loc) or default
        why = str(item["msg"]).removeprefix("Value error, ")
        why = why[:1].lower() + why[1:]
        value = item.get("input")
        if loc and not _is_secret(loc) and isinstance(value, str | int | float | bool):
            parts.append(f"{field}={value!r} is not valid: {why}")
        elif loc:
            parts.append(f"{field} is not valid: {why}")
        else:
            parts.append(why)
    return "; ".join(parts)


def _first_reason(error: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return explain(error, default="value")
    return str(error)


def redacted(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with every secret replaced by `REDACTED` (mapping keys kept)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in SECRET_FIELDS and value is not None:
            out[key] = dict.fromkeys(value, REDACTED) if isinstance(value, Mapping) else REDACTED
        elif isinstance(value, Mapping):
            out[key] = redacted(value)
        else:
            out[key] = value
    return out

"""Real Airflow, started from a test: emulators, a private AIRFLOW_HOME, the four components.

Reusable outside this repository (see docs/system_tests.md): copy this directory into a
package of yours (its modules import each other relatively), or import it from a checkout.
Nothing here imports Airflow, and only the emulator from the provider. One module per job:

* `waiting`: `wait_until`, the `ABORT` switch and `StackError`.
* `processes`: `ManagedProcess` (a command under ``setsid``, stopped by process group),
  free ports, the venv's executables, a clean environment.
* `process_tree`: descendants and marked processes, read from ``/proc``, to leave nothing
  behind.
* `emulator_process`: `EmulatorProcess`, the emulator's CLI with an `AdminClient` on its
  control API.
* `database`: `PostgresCluster` (a private cluster) and `MetadataDatabase` (SQL on the
  metadata database, SQLite or PostgreSQL).
* `rest_api`: `AirflowRestClient`, the REST calls of what a user does in the UI.
* `stack`: `AirflowStack`, the Airflow home and its four components (a REST client too).
* `recorders`: `StateRecorder` and `TriggerTableRecorder`, background samplers.
* `leaks`: `find_secret`, to prove a token is nowhere.
* `running`: `running_stack`, all of it as one context manager.
* `redis`: a private ``redis-server`` (the Celery broker), on a free port in a temp dir.
* `celery_stack`: the stack with the CeleryExecutor: two workers and two triggerers.
"""

from .database import MetadataDatabase, PostgresCluster, PostgresUnavailable
from .emulator_process import EmulatorProcess, secret_token
from .leaks import find_secret, read_files
from .processes import ManagedProcess
from .recorders import StateRecorder, TriggerTableRecorder
from .rest_api import AirflowRestClient
from .running import running_stack, stage_dags
from .stack import AirflowStack, StackSettings
from .waiting import ABORT, StackError, wait_until

__all__ = [
    "ABORT",
    "AirflowRestClient",
    "AirflowStack",
    "EmulatorProcess",
    "ManagedProcess",
    "MetadataDatabase",
    "PostgresCluster",
    "PostgresUnavailable",
    "StackError",
    "StackSettings",
    "StateRecorder",
    "TriggerTableRecorder",
    "find_secret",
    "read_files",
    "running_stack",
    "secret_token",
    "stage_dags",
    "wait_until",
]

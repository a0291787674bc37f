"""The faults a reliability review needed a proxy for, scripted in the emulator and met by
the real client (sync and async) over loopback HTTP: late commits, foreign resources,
unknown statuses, truncated and HTML bodies, paged lists and list lag."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, sentiment_rows

from airflow_predibase.client import (
    AsyncPredibaseClient,
    ClientSettings,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PredibaseClient,
    ResponseValidationError,
    RetryPolicy,
)
from airflow_predibase.client.models import (
    DeploymentRequest,
    FinetuningJobRequest,
    RepoRequest,
)

JOBS = "/v2/finetuning/jobs"
NO_WAIT = RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0, retry_after_cap=0)


def _admin_post(emu: Emu, path: str, **kwargs: object) -> httpx.Response:
    """The control API, raw: to see the status it answers a bad request with."""
    url = f"{emu.server.url}/__emulator__{path}"
    return httpx.post(url, headers=emu.auth, timeout=10, **kwargs)  # type: ignore[arg-type]


def _settings(emu: Emu, timeout: float = 10.0) -> ClientSettings:
    server = emu.server
    return ClientSettings(
        token=server.token,
        base_url=server.control_url,
        serving_url=server.url,
        tenant_id=server.tenant,
        timeout=timeout,
    )


@pytest.fixture
def client(emu: Emu) -> Iterator[PredibaseClient]:
    with PredibaseClient(_settings(emu), retry=NO_WAIT) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(emu: Emu) -> AsyncIterator[AsyncPredibaseClient]:
    async with AsyncPredibaseClient(_settings(emu), retry=NO_WAIT) as async_client:
        yield async_client


def _job_request(repo: str = "r") -> FinetuningJobRequest:
    return FinetuningJobRequest(base_model=BASE_MODEL, dataset="reviews", repo=repo)


@pytest.fixture
def trainable(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")


# -- late commit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lost", [{"lost_as": "drop"}, {"lost_as": "status", "status": 504}], ids=["drop", "504"]
)
@pytest.mark.usefixtures("trainable")
def test_a_create_that_commits_late_appears_once_after_the_lag(
    emu: Emu, client: PredibaseClient, lost: dict[str, Any]
) -> None:
    emu.admin.late_commit(JOBS, lag=12, **lost)
    with pytest.raises(OutcomeUnknownError):
        client.create_finetuning_job(_job_request())
    assert client.list_finetuning_jobs() == []
    emu.advance(11.9)
    assert client.list_finetuning_jobs() == []
    assert emu.admin.state()["counts"]["finetuning_jobs"] == 0
    emu.advance(0.2)
    (job,) = client.list_finetuning_jobs()
    assert client.get_finetuning_job(job.id).id == job.id
    # Its lifecycle starts at the commit: a fast-profile job is still queued.
    assert job.status == "queued"


@pytest.mark.usefixtures("trainable")
def test_a_create_whose_answer_times_out_commits_late(emu: Emu) -> None:
    emu.admin.late_commit(JOBS, lag=5, lost_as="timeout", delay=0.5)
    impatient = PredibaseClient(_settings(emu, timeout=0.2), retry=NO_WAIT)
    with impatient, pytest.raises(OutcomeUnknownError, match="outcome is unknown"):
        impatient.create_finetuning_job(_job_request())
    emu.advance(5)
    assert len(emu.ok(emu.control.get("/finetuning/jobs"))["data"]) == 1


async def test_a_late_deployment_holds_its_name_until_it_shows(
    emu: Emu, aclient: AsyncPredibaseClient
) -> None:
    emu.admin.late_commit("/v2/deployments", lag=12)
    request = DeploymentRequest(name="late", base_model=BASE_MODEL)
    with pytest.raises(OutcomeUnknownError):
        await aclient.create_deployment(request)
    with pytest.raises(NotFoundError):
        await aclient.get_deployment("late")
    # A blind re-create is refused: the first one is on its way.
    with pytest.raises(ConflictError):
        await aclient.create_deployment(request)
    emu.advance(12)
    assert (await aclient.get_deployment("late")).name == "late"
    assert [d.name for d in await aclient.list_deployments()] == ["late"]


def test_late_commit_rules_are_validated(emu: Emu) -> None:
    for bad in ({"lost_as": "status", "status": 429}, {"lag": -1}, {"lost_as": "later"}):
        answer = _admin_post(emu, "/faults", json={"kind": "late_commit", "path": JOBS, **bad})
        assert answer.status_code == 422, (bad, answer.text)


# -- list lag -----------------------------------------------------------------------------


@pytest.mark.usefixtures("trainable")
def test_a_new_job_is_missing_from_lists_for_the_lag(emu: Emu, client: PredibaseClient) -> None:
    emu.admin.list_lag(JOBS, lag=30)
    job = client.create_finetuning_job(_job_request())
    assert client.get_finetuning_job(job.id).id == job.id
    assert client.list_finetuning_jobs() == []
    emu.advance(30)
    assert [j.id for j in client.list_finetuning_jobs()] == [job.id]


# -- foreign resource ---------------------------------------------------------------------


@pytest.mark.usefixtures("trainable")
def test_a_poll_answered_with_another_job(emu: Emu, client: PredibaseClient) -> None:
    mine = client.create_finetuning_job(_job_request())
    theirs = client.create_finetuning_job(_job_request())
    emu.admin.foreign(f"{JOBS}/{mine.id}", other=theirs.id)
    assert client.get_finetuning_job(mine.id).id == theirs.id
    assert client.get_finetuning_job(mine.id).id == mine.id  # count 1: then right again


@pytest.mark.usefixtures("trainable")
async def test_a_poll_answered_with_a_synthesized_foreign_job(
    emu: Emu, aclient: AsyncPredibaseClient
) -> None:
    mine = await aclient.create_finetuning_job(_job_request())
    emu.admin.foreign(f"{JOBS}/*")
    seen = await aclient.get_finetuning_job(mine.id)
    assert seen.id != mine.id
    assert seen.id not in {j.id for j in await aclient.list_finetuning_jobs()}


def test_a_deployment_poll_answered_with_another_name(emu: Emu, client: PredibaseClient) -> None:
    client.create_deployment(DeploymentRequest(name="mine", base_model=BASE_MODEL))
    emu.admin.foreign("/v2/deployments/mine")
    assert client.get_deployment("mine").name == "mine-foreign"


# -- unknown status -----------------------------------------------------------------------


@pytest.mark.usefixtures("trainable")
async def test_a_status_nobody_knows_for_n_polls(
    emu: Emu, client: PredibaseClient, aclient: AsyncPredibaseClient
) -> None:
    job = client.create_finetuning_job(_job_request())
    emu.admin.unknown_status(f"{JOBS}/{job.id}", reported_status="suspended", count=2)
    for seen in (client.get_finetuning_job(job.id), await aclient.get_finetuning_job(job.id)):
        assert str(seen.status) == "suspended"
        assert not seen.status.is_known
        assert not seen.status.is_terminal
    assert client.get_finetuning_job(job.id).status.is_known


@pytest.mark.usefixtures("trainable")
def test_an_unknown_status_until_cleared(emu: Emu, client: PredibaseClient) -> None:
    job = client.create_finetuning_job(_job_request())
    emu.admin.unknown_status(f"{JOBS}/{job.id}", count=1_000_000)
    emu.advance(60)
    assert str(client.get_finetuning_job(job.id).status) == "suspended"
    emu.admin.clear_faults()
    assert client.get_finetuning_job(job.id).status == "completed"


# -- truncated and HTML bodies ------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_a_200_cut_off_mid_way(emu: Emu, client: PredibaseClient, keep: float) -> None:
    emu.admin.truncated("/v2/models", keep=keep)
    with pytest.raises(ResponseValidationError) as caught:
        client.list_models()
    assert caught.value.status_code == 200
    assert client.list_models()


async def test_a_captive_portal_answers_200_with_html(
    emu: Emu, aclient: AsyncPredibaseClient
) -> None:
    emu.admin.add_fault("non_json", path="/v2/repos/*", status=200)
    raw = emu.control.get("/repos/r")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/html")
    emu.admin.add_fault("non_json", path="/v2/repos/*", status=200)
    with pytest.raises(ResponseValidationError, match="not JSON"):
        await aclient.get_repo("r")


def test_a_status_fault_still_needs_an_error_status(emu: Emu) -> None:
    answer = _admin_post(emu, "/faults", json={"kind": "status", "status": 200})
    assert answer.status_code == 422


# -- paged lists --------------------------------------------------------------------------


@pytest.fixture
def five_repos(client: PredibaseClient) -> list[str]:
    names = [f"repo-{i}" for i in range(5)]
    for name in names:
        client.create_repo(RepoRequest(name=name))
    return names


@pytest.mark.usefixtures("five_repos")
def test_lists_page_with_limit_and_offset(emu: Emu) -> None:
    assert set(emu.ok(emu.control.get("/repos"))) == {"data"}  # unpaged unless asked
    page = emu.ok(emu.control.get("/repos", params={"limit": 2, "offset": 1}))
    assert [r["name"] for r in page["data"]] == ["repo-1", "repo-2"]
    assert {k: page[k] for k in ("total", "offset", "limit", "next_offset")} == {
        "total": 5,
        "offset": 1,
        "limit": 2,
        "next_offset": 3,
    }
    last = emu.ok(emu.control.get("/repos", params={"limit": 2, "offset": 3}))
    assert [r["name"] for r in last["data"]] == ["repo-3", "repo-4"]
    assert last["next_offset"] is None
    beyond = emu.ok(emu.control.get("/repos", params={"offset": 9}))
    assert beyond["data"] == []
    assert beyond["next_offset"] is None


@pytest.mark.usefixtures("five_repos")
def test_a_page_size_caps_every_page(emu: Emu) -> None:
    emu.admin.set_page_size(2)
    first = emu.ok(emu.control.get("/repos", params={"limit": 100}))
    assert (len(first["data"]), first["limit"], first["next_offset"]) == (2, 2, 2)
    names, offset = [], 0
    while offset is not None:
        page = emu.ok(emu.control.get("/repos", params={"limit": 100, "offset": offset}))
        names += [r["name"] for r in page["data"]]
        offset = page["next_offset"]
    assert names == [f"repo-{i}" for i in range(5)]
    assert emu.ok(emu.control.get("/models"))["next_offset"] == 2  # every list route
    emu.admin.reset()
    assert emu.admin.state()["page_size"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "offset=-1", "limit=%C2%B2", "limit=1e3"])
def test_bad_page_parameters_are_a_400(emu: Emu, query: str) -> None:
    answer = emu.control.get(f"/finetuning/jobs?{query}")
    assert answer.status_code == 400, answer.text
    assert "query parameter" in answer.json()["error"]


def test_the_client_reads_every_page(
    emu: Emu, client: PredibaseClient, five_repos: list[str]
) -> None:
    emu.admin.set_page_size(2)
    assert [r.name for r in client.list_repos()] == five_repos


# -- no 5xx unless asked: the cases found by hand and by schemathesis ----------------------


def test_deeply_nested_json_is_a_400(emu: Emu) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    answer = emu.control.post(
        "/repos", content=nested, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["error"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_a_400(emu: Emu, constant: str) -> None:
    answer = _admin_post(emu, "/clock/advance", content=f'{{"seconds": {constant}}}')
    assert answer.status_code == 400


def test_the_clock_cannot_be_pushed_past_what_timestamps_can_show(emu: Emu) -> None:
    emu.repo("r")
    answer = _admin_post(emu, "/clock/advance", json={"seconds": 1e12})
    assert answer.status_code == 422
    assert emu.control.get("/repos/r").status_code == 200


def test_reset_rewinds_the_clock(emu: Emu) -> None:
    start = emu.admin.state()["clock"]
    emu.admin.advance_clock(3600)
    emu.advance(10)
    assert emu.admin.state()["clock"] == start + 3610
    emu.admin.reset()
    assert emu.admin.state()["clock"] == start


@pytest.mark.parametrize("version", ["%C2%B2", "%D9%A3"])
def test_a_non_ascii_digit_is_not_a_version(emu: Emu, version: str) -> None:
    emu.repo("r")
    answer = emu.control.get(f"/repos/r/version/{version}")
    assert answer.status_code == 400

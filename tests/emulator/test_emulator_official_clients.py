"""Faithfulness, judged by the official clients: `openai` and `lorax-client`."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from emulator_testkit import BASE_MODEL, Emu, sentiment_rows
from lorax import Client as LoraxClient
from lorax.errors import NotFoundError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:lorax.*")

PROMPT = "Review: the film was great and the cast great too. Sentiment:"


@pytest.fixture
def adapter(emu: Emu) -> Iterator[str]:
    adapter_id = emu.adapter("sentiment", sentiment_rows())
    emu.deployment("dep", min_replicas=1)
    return adapter_id


@pytest.fixture
def oai(emu: Emu) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=f"{emu.server.deployment_url('dep')}/v1", api_key=emu.server.token, max_retries=0
    )
    yield client
    client.close()


def test_openai_chat_completion(oai: openai.OpenAI, adapter: str) -> None:
    reply = oai.chat.completions.create(
        model=adapter, messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.choices[0].message.content == "positive"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len(PROMPT.split())
    assert reply.usage.completion_tokens == 1
    base = oai.chat.completions.create(model="", messages=[{"role": "user", "content": PROMPT}])
    assert base.choices[0].message.content != "positive"


def test_openai_chat_completion_stream(oai: openai.OpenAI, adapter: str) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="", messages=[{"role": "user", "content": PROMPT}], stream=True, max_tokens=4
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 4
    assert chunks[-1].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.completion_tokens, usage.total_tokens) == (4, 4 + len(PROMPT.split()))


def test_openai_completion_both_ways(oai: openai.OpenAI, adapter: str) -> None:
    reply = oai.completions.create(model=adapter, prompt=PROMPT)
    assert reply.choices[0].text == "positive"
    stream = oai.completions.create(model=adapter, prompt=PROMPT, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks) == "positive"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 1


def test_openai_sees_a_mid_stream_error(emu: Emu, oai: openai.OpenAI, adapter: str) -> None:
    emu.admin.add_fault("stream_error", path="*/v1/chat/completions", after_tokens=1)
    stream = oai.chat.completions.create(
        model="", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_openai_maps_an_unknown_adapter_to_not_found(oai: openai.OpenAI, adapter: str) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="nope/3", messages=[{"role": "user", "content": "x"}])


@pytest.fixture
def lorax_client(emu: Emu) -> LoraxClient:
    return LoraxClient(
        emu.server.deployment_url("dep"), headers={"Authorization": f"Bearer {emu.server.token}"}
    )


def test_lorax_generate(lorax_client: LoraxClient, adapter: str) -> None:
    reply = lorax_client.generate(PROMPT, adapter_id=adapter, adapter_source="pbase", details=True)
    assert reply.generated_text == "positive"
    assert reply.details is not None
    assert reply.details.finish_reason == "eos_token"
    assert reply.details.generated_tokens == len(reply.details.tokens) == 1
    assert reply.details.prompt_tokens == len(PROMPT.split())
    base = lorax_client.generate(PROMPT, max_new_tokens=3)
    assert len(base.generated_text.split()) == 3
    assert base.details is not None
    assert base.details.finish_reason == "length"


def test_lorax_generate_stream(lorax_client: LoraxClient, adapter: str) -> None:
    events = list(lorax_client.generate_stream(PROMPT, max_new_tokens=5))
    assert len(events) == 5
    assert all(e.generated_text is None for e in events[:-1])
    last = events[-1]
    assert last.generated_text == "".join(e.token.text for e in events)
    assert last.details is not None
    assert last.details.generated_tokens == 5


def test_lorax_errors(lorax_client: LoraxClient, adapter: str) -> None:
    with pytest.raises(NotFoundError):
        lorax_client.generate(PROMPT, adapter_id="sentiment/99")


def test_serving_by_base_model_name_as_a_shared_endpoint(emu: Emu) -> None:
    client = LoraxClient(
        emu.server.deployment_url(BASE_MODEL),
        headers={"Authorization": f"Bearer {emu.server.token}"},
    )
    assert BASE_MODEL in client.generate("hello").generated_text

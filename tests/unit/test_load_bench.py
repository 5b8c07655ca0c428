"""Unit tests of the load benchmark's pure parts: no server, no network."""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter

import pytest

from bench.load import (
    DEFAULT_MIX,
    ERROR_SAMPLES,
    OPERATIONS,
    OpStats,
    build_parser,
    choose_operation,
    client_mixes,
    cpu_shares,
    log_problems,
    make_plans,
    memory_payload,
    merge_stats,
    message_batch,
    parse_backends,
    parse_mix,
    parse_proc_cpu,
    percentile,
    render_errors,
    render_markdown,
    request_for,
    run_note,
    server_env,
    summarise,
)


class TestPercentile:
    def test_matches_linear_interpolation(self) -> None:
        values = [15.0, 20.0, 35.0, 40.0, 50.0]
        assert percentile(values, 0) == 15.0
        assert percentile(values, 100) == 50.0
        assert percentile(values, 50) == 35.0
        assert percentile(values, 40) == pytest.approx(29.0)  # 1.6 -> 20 + 0.6 * 15
        assert percentile(values, 95) == pytest.approx(48.0)

    def test_order_does_not_matter(self) -> None:
        values = [float(v) for v in range(1, 101)]
        shuffled = values[:]
        random.Random(1).shuffle(shuffled)
        assert percentile(shuffled, 99) == pytest.approx(99.01)
        assert percentile(shuffled, 50) == pytest.approx(50.5)

    def test_one_value_and_none(self) -> None:
        assert percentile([7.0], 99) == 7.0
        assert math.isnan(percentile([], 50))

    def test_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            percentile([1.0], 101)


class TestMix:
    def test_default_mix_sums_to_one(self) -> None:
        assert set(DEFAULT_MIX) == set(OPERATIONS)
        assert sum(DEFAULT_MIX.values()) == pytest.approx(1.0)

    def test_parse_normalises_and_fills_missing(self) -> None:
        mix = parse_mix("messages=3, search=1")
        assert mix == {"messages": 0.75, "memories": 0.0, "search": 0.25, "context": 0.0}

    @pytest.mark.parametrize("value", ["", "messages", "messages=-1", "chat=1", "search=x",
                                       "messages=0,search=0", "search=nan"])
    def test_parse_rejects(self, value: str) -> None:
        with pytest.raises(argparse.ArgumentTypeError):
            parse_mix(value)

    def test_draws_follow_the_weights(self) -> None:
        rng = random.Random(0)
        draws = Counter(choose_operation(rng, DEFAULT_MIX) for _ in range(20_000))
        for name, weight in DEFAULT_MIX.items():
            assert draws[name] / 20_000 == pytest.approx(weight, abs=0.015)

    def test_zero_weight_is_never_drawn(self) -> None:
        mix = parse_mix("messages=1,context=1")
        rng = random.Random(3)
        assert {choose_operation(rng, mix) for _ in range(2000)} == {"messages", "context"}

    def test_same_seed_same_sequence(self) -> None:
        a, b = random.Random(42), random.Random(42)
        assert [choose_operation(a, DEFAULT_MIX) for _ in range(200)] == [
            choose_operation(b, DEFAULT_MIX) for _ in range(200)
        ]


class TestWorkload:
    def test_batches_are_one_to_three_chat_messages(self) -> None:
        rng = random.Random(0)
        sizes = set()
        for _ in range(300):
            messages, question = message_batch(rng)
            sizes.add(len(messages))
            assert messages[0]["role"] == "user"
            assert [m["role"] for m in messages] == ["user", "assistant", "user"][: len(messages)]
            assert all(m["content"] and "{" not in m["content"] for m in messages)
            assert question.endswith("?") and "{" not in question
        assert sizes == {1, 2, 3}

    def test_a_batch_of_a_given_size_alternates_user_and_assistant(self) -> None:
        rng = random.Random(0)
        for size in (1, 2, 5, 8):
            messages, question = message_batch(rng, size)
            assert len(messages) == size and question.endswith("?")
            assert [m["role"] for m in messages] == (["user", "assistant"] * 4)[:size]
            assert all(m["content"] and "{" not in m["content"] for m in messages)

    def test_each_client_has_its_own_mix(self) -> None:
        args = build_parser().parse_args(["--client-mix", "messages=1;messages=1;search=1", "--message-batch", "5"])
        plans = make_plans("load-x", client_mixes(args), sessions=1, seed=0, message_batch=args.message_batch)
        assert [{op: w for op, w in plan.mix.items() if w} for plan in plans] == [{"messages": 1.0}, {"messages": 1.0}, {"search": 1.0}]
        path, body, _ = request_for("messages", plans[0])
        assert len(body["messages"]) == 5
        assert client_mixes(build_parser().parse_args(["--clients", "2"])) == [DEFAULT_MIX, DEFAULT_MIX]

    def test_memory_payload(self) -> None:
        memory, question = memory_payload(random.Random(0), "u1", "s1")
        assert memory["user_id"] == "u1" and memory["session_id"] == "s1"
        assert memory["type"] == "semantic" and 0 <= memory["importance"] <= 1
        assert "{" not in memory["content"] and question.endswith("?")

    def test_plans_are_deterministic_and_distinct(self) -> None:
        def run(seed: int) -> list[tuple[str, str]]:
            plans = make_plans("load-x", [DEFAULT_MIX] * 3, sessions=2, seed=seed)
            calls = []
            for plan in plans:
                for op in ("messages", "memories", "search", "context"):
                    path, body, _ = request_for(op, plan)
                    calls.append((path, repr(body)))
            return calls

        assert run(0) == run(0)
        assert run(0) != run(1)
        plans = make_plans("load-x", [DEFAULT_MIX] * 2, sessions=2, seed=0)
        assert plans[0].user_id != plans[1].user_id
        assert plans[0].session_ids == ["load-x-u0-s0", "load-x-u0-s1"]

    def test_requests_use_the_client_identity(self) -> None:
        plan = make_plans("load-x", [DEFAULT_MIX], sessions=2, seed=0)[0]
        path, body, question = request_for("messages", plan)
        assert path.startswith("/v1/sessions/load-x-u0-s") and path.endswith("/messages")
        assert 1 <= len(body["messages"]) <= 3 and question
        path, body, _ = request_for("context", plan)
        assert path.endswith("/context") and body["max_tokens"] == 500
        plan.remember("Where did I move to last May?")
        path, body, question = request_for("search", plan)
        assert path == "/v1/memories/search" and question is None
        assert body["user_id"] == plan.user_id and body["query"] == "Where did I move to last May?"
        with pytest.raises(ValueError):
            request_for("delete", plan)

    def test_remember_keeps_the_newest(self) -> None:
        plan = make_plans("r", [DEFAULT_MIX], sessions=1, seed=0)[0]
        for i in range(100):
            plan.remember(f"q{i}", keep=10)
        assert plan.questions == [f"q{i}" for i in range(90, 100)]


class TestStats:
    def test_record_counts_errors_and_keeps_few_samples(self) -> None:
        stats = OpStats()
        stats.record(5.0)
        for i in range(ERROR_SAMPLES + 3):
            stats.record(10.0, {"op": "search", "status": 500, "body": f"boom {i}"})
        assert stats.errors == ERROR_SAMPLES + 3
        assert len(stats.latencies_ms) == ERROR_SAMPLES + 4
        assert [s["body"] for s in stats.error_samples] == [f"boom {i}" for i in range(ERROR_SAMPLES)]

    def test_merge_and_summarise(self) -> None:
        a = {"messages": OpStats([10.0, 20.0]), "search": OpStats([30.0])}
        b = {"messages": OpStats([40.0], errors=1, error_samples=[{"op": "messages"}])}
        merged = merge_stats([a, b])
        assert set(merged) == set(OPERATIONS)
        summary = summarise(merged, elapsed_s=2.0)
        messages = summary["operations"]["messages"]
        assert messages["count"] == 3 and messages["errors"] == 1
        assert messages["ops_per_s"] == pytest.approx(1.5)
        assert messages["p50_ms"] == 20.0 and messages["max_ms"] == 40.0
        assert summary["operations"]["memories"]["count"] == 0
        assert math.isnan(summary["operations"]["memories"]["p95_ms"])
        total = summary["total"]
        assert total["count"] == 4 and total["errors"] == 1 and total["ops_per_s"] == 2.0
        assert total["p50_ms"] == pytest.approx(25.0)

    def test_cpu_shares(self) -> None:
        before = [100, 0, 50, 800, 10, 0, 0, 5, 0, 0]
        after = [200, 0, 100, 900, 10, 0, 0, 45, 0, 0]  # +100 user +50 sys +100 idle +40 steal
        shares = cpu_shares(before, after)
        assert shares is not None
        assert shares["steal_pct"] == pytest.approx(100 * 40 / 290)
        assert shares["idle_pct"] == pytest.approx(100 * 100 / 290)
        assert shares["busy_pct"] == pytest.approx(100 * 150 / 290)
        assert cpu_shares(None, after) is None and cpu_shares(after, after) is None

    def test_parse_proc_cpu(self) -> None:
        line = "4242 (uvicorn: main) S 1 4242 4242 0 -1 4194560 9 0 0 0 250 50 7 3 20 0 9 0 100 1 2"
        assert parse_proc_cpu(line, 100) == pytest.approx(3.0)  # utime 250 + stime 50 ticks

    def test_log_problems(self) -> None:
        text = "\n".join([
            '{"level": "WARNING", "message": "slow"}',
            '{"level": "ERROR", "message": "job failed"}',
            "Traceback (most recent call last):",
            '{"level": "INFO"}',
        ])
        count, first = log_problems(text)
        assert count == 2 and first[0].startswith('{"level": "ERROR"')


def _result(errors: int = 0) -> dict:
    stats = {"messages": OpStats([10.0, 12.0, 14.0]), "memories": OpStats([20.0]),
             "search": OpStats([30.0, 31.0]), "context": OpStats([50.0])}
    if errors:
        stats["search"].record(99.0, {"op": "search", "path": "/v1/memories/search",
                                      "status": 503, "body": '{"title":"Service Unavailable"}'})
    summary = summarise(stats, 2.0)
    run = {"backend": "embedded", **summary, "cpu": {"busy_pct": 97.0, "idle_pct": 1.0,
                                                      "steal_pct": 2.04,
                                                      "server_cores": 1.5, "client_cores": 0.25},
           "error_samples": [s for op in stats.values() for s in op.error_samples],
           "queue": {"after": {"pending": 12, "failed": 0, "oldest_pending_age_seconds": 9.96},
                     "drained_s": 3.14,
                     "final": {"pending": 0, "failed": 0}}}
    config = {"clients": 8, "seconds": 20.0, "mix": DEFAULT_MIX, "seed": 0}
    return {"config": config, "runs": [run, {**run, "backend": "servers", "cpu": None}]}


class TestReport:
    def test_markdown_table(self) -> None:
        text = render_markdown(_result())
        lines = text.splitlines()
        assert lines[0] == ("Load: 8 clients, 20 s per backend, mix messages 40%, memories 20%,"
                            " search 25%, context 15%, seed 0.")
        header = lines.index("| backend | operation | count | ops/s | p50 ms | p95 ms | p99 ms | errors |")
        assert lines[header + 1] == "|---|---|---:|---:|---:|---:|---:|---:|"
        rows = lines[header + 2 : header + 12]
        assert rows[0] == "| embedded | messages | 3 | 1.5 | 12.0 | 13.8 | 14.0 | 0 |"
        assert rows[4] == "| embedded | **total** | 7 | 3.5 | 20.0 | 44.3 | 48.9 | 0 |"
        assert rows[5].startswith("| servers | messages |")
        assert all(row.count("|") == 9 for row in rows)
        assert lines[-2] == (
            "embedded: machine CPU busy 97%, steal 2.0% (cores used: server 1.50, client 0.25);"
            " 12 background jobs pending at the end (oldest 10.0 s old), drained in 3.1 s."
        )
        assert lines[-1].startswith("servers: 12 background jobs pending")

    def test_run_note(self) -> None:
        assert run_note({"cpu": None, "queue": None}) == "–"
        queue = {"after": {"pending": 5, "failed": 0}, "drained_s": None,
                 "final": {"pending": 2, "failed": 1}}
        assert run_note({"queue": queue}) == (
            "5 background jobs pending at the end, not drained; failed background jobs: 1."
        )

    def test_empty_operation_renders_dashes(self) -> None:
        result = _result()
        result["runs"][0] = {**result["runs"][0], **summarise({"messages": OpStats()}, 1.0)}
        assert "| embedded | messages | 0 | 0.0 | – | – | – | 0 |" in render_markdown(result)

    def test_errors(self) -> None:
        result = _result(errors=1)
        assert "| embedded | search | 3 | 1.5 |" in render_markdown(result)
        assert render_errors(result).splitlines()[0] == (
            'embedded search: 503 {"title":"Service Unavailable"}'
        )
        assert render_errors(_result()) == ""


class TestCli:
    def test_defaults(self) -> None:
        args = build_parser().parse_args([])
        assert args.backend == ["embedded", "servers"]
        assert args.clients == 8 and args.seconds == 30.0 and args.mix == DEFAULT_MIX

    def test_backends(self) -> None:
        assert parse_backends("servers") == ["servers"]
        assert parse_backends("servers,embedded,servers") == ["servers", "embedded"]
        with pytest.raises(argparse.ArgumentTypeError):
            parse_backends("qdrant")

    def test_server_env_drops_callers_settings(self, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
        monkeypatch.setenv("MEMORY_DATABASE_URL", "postgresql+asyncpg://elsewhere/db")
        env = server_env(tmp_path, "k" * 40, {"MEMORY_REDIS_URL": "redis://127.0.0.1:6379/13"})
        assert "MEMORY_DATABASE_URL" not in env
        assert env["MEMORY_ADMIN_KEY"] == "k" * 40 and env["MEMORY_RATE_LIMIT_PER_MINUTE"] == "0"
        assert env["MEMORY_DATA_DIR"] == str(tmp_path) and env["HF_HUB_OFFLINE"] == "1"
        assert env["MEMORY_REDIS_URL"] == "redis://127.0.0.1:6379/13"

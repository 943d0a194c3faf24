"""The model benchmark runs and reports its figures (the speed targets themselves are checked by hand)."""

from __future__ import annotations

import json

from bridge_backend import bench_model


def test_bench_model_prints_json(capsys) -> None:
    bench_model.main(
        [
            "--json",
            "--preset",
            "tiny",
            "--vocab",
            "50",
            "--bs",
            "4",
            "--bptt",
            "8",
            "--steps",
            "2",
            "--lm-vocab",
            "300",
            "--lm-steps",
            "2",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert res["awd_tokens_per_s"] > 0 and res["plain_lstm_tokens_per_s"] > 0
    assert abs(res["ratio"] - res["awd_tokens_per_s"] / res["plain_lstm_tokens_per_s"]) < 1e-2
    assert res["sha_rnn_preset"] == "tiny" and res["sha_rnn_tokens_per_s"] > 0
    assert abs(res["sha_rnn_ratio"] - res["sha_rnn_tokens_per_s"] / res["sha_rnn_awd_tokens_per_s"]) < 1e-2
    assert res["sha_rnn_sizes"] == {"emb_sz": 16, "n_hid": 64, "n_layers": 2, "mem_len": 70}
    assert res["params"]["awd"] > 0 and res["params"]["sha_rnn"] > 0
    assert res["vocab"] == 300 and res["lm_full_softmax_tokens_per_s"] > 0 and res["lm_adaptive_tokens_per_s"] > 0
    assert abs(res["speedup"] - res["lm_adaptive_tokens_per_s"] / res["lm_full_softmax_tokens_per_s"]) < 1e-2
    assert res["lm_awd_tokens_per_s"] > 0 and res["lm_sha_rnn_tokens_per_s"] > 0
    assert abs(res["lm_sha_rnn_ratio"] - res["lm_sha_rnn_tokens_per_s"] / res["lm_awd_tokens_per_s"]) < 1e-2
    assert 0 < res["lm_params"]["sha_rnn"] and 0 < res["lm_params"]["awd"]
    assert res["lm_adamw_fused"] is True and res["lm_adamw_loop_ms"] > 0 and res["lm_adamw_fused_ms"] > 0
    assert abs(res["lm_adamw_speedup"] - res["lm_adamw_loop_ms"] / res["lm_adamw_fused_ms"]) < 0.05 * res["lm_adamw_speedup"]

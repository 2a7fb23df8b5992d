"""The reference numbers of src/kvpress-parity.test.ts: DuoAttention's on-the-fly head scores as kvpress computes them
(kvpress/presses/duo_attention_press.py, `duo_attention_on_the_fly`), with transformers, on a tiny random Llama with GQA
and YaRN RoPE (attention factor 1.25, so cos and sin are scaled), over fixed token ids instead of BookSum texts.

Writes test/fixtures/kvpress-llama/{config.json, model.safetensors} and test/fixtures/kvpress-on-the-fly.json.
Run from the package directory with the repository's venv: ../../.venv/bin/python test/kvpress_reference.py
(transformers 5.23.0, torch 2.13.0+cpu).

The steps follow kvpress's function: hidden states entering each layer, the layer's input norm, q_proj / k_proj, the
mean over the text's tokens, repeated q_len times, RoPE at 0 … q_len − 1 (the model's rotary_emb and
apply_rotary_pos_emb), the last query's softmax over the keys with scale 1/√d, the mean of its cumulative sum, the mean
over each KV head's query heads, averaged over the texts. Per query head scores are written too (before the group mean).
"""
import json
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
Q_LEN = 50


def main() -> None:
    torch.manual_seed(2410)
    config = LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-5, initializer_range=0.25,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64,
                         "attention_factor": 1.25, "beta_fast": 32.0, "beta_slow": 1.0},
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        # a component every token shares, so the mean query and key over a text are far from zero and the heads'
        # positional preferences differ (random embeddings alone average out to near-uniform attention)
        model.model.embed_tokens.weight += torch.randn(config.hidden_size) * 0.5
    out_dir = FIXTURES / "kvpress-llama"
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "generation_config.json").unlink(missing_ok=True)  # not read by razorkv

    generator = torch.Generator().manual_seed(7)
    texts = [torch.randint(3, 96, (n,), generator=generator).tolist() for n in (40, 57)]
    L, H, K = config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads
    groups = H // K
    per_query = torch.zeros(L, H, dtype=torch.float64)
    per_kv = torch.zeros(L, K, dtype=torch.float64)
    position_ids = torch.arange(Q_LEN).unsqueeze(0)
    with torch.no_grad():
        for ids in texts:
            hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[:-1]
            for layer_idx, h in enumerate(hidden):
                layer = model.model.layers[layer_idx]
                d = layer.self_attn.head_dim
                h = layer.input_layernorm(h)
                q = layer.self_attn.q_proj(h).view(1, h.shape[1], -1, d).mean(dim=1, keepdim=True)
                q = q.repeat(1, Q_LEN, 1, 1).transpose(1, 2)
                k = layer.self_attn.k_proj(h).view(1, h.shape[1], -1, d).mean(dim=1, keepdim=True)
                k = k.repeat(1, Q_LEN, 1, 1).transpose(1, 2)
                cos, sin = model.model.rotary_emb(h, position_ids)
                q, k = apply_rotary_pos_emb(q, k, cos, sin)
                k = k.repeat_interleave(groups, dim=1)
                weights = torch.matmul(q[:, :, -1:, :], k.transpose(2, 3)) / (d**0.5)
                weights = weights.softmax(dim=-1, dtype=torch.float32).squeeze()
                s = torch.cumsum(weights, dim=1).mean(1)
                per_query[layer_idx] += s.double() / len(texts)
                per_kv[layer_idx] += s.view(-1, groups).mean(1).double() / len(texts)

    reference = {
        "source": "test/kvpress_reference.py (kvpress duo_attention_on_the_fly's steps, transformers " + transformers.__version__ + ")",
        "model": "kvpress-llama",
        "queryLength": Q_LEN,
        "texts": texts,
        "perQueryHead": per_query.tolist(),
        "perKvHead": per_kv.tolist(),
    }
    (FIXTURES / "kvpress-on-the-fly.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(json.dumps(reference["perKvHead"]))


if __name__ == "__main__":
    main()

"""Write a tiny llama-architecture GGUF model with random weights: ``python tiny_gguf.py OUT``.

No package on the registries this project can reach ships trained weights that a model
server here could load, and nothing may be downloaded from a model hub. This makes a
real model file (2 layers, 64-wide, a character vocabulary, a chat template) that a real
inference engine (llama.cpp, through llama-cpp-python's OpenAI-compatible server) loads
and runs: its answers are gibberish, but the wire (chat completions, SSE chunks,
usage, finish reasons) is the real engine's. Needs ``gguf`` and ``numpy``.
"""

from __future__ import annotations

import string
import sys

import gguf  # type: ignore[import-not-found]
import numpy as np

N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 64, 2, 4, 128, 2048
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]  # unknown, control, control
    for byte in range(256):  # byte fallback: any text can be tokenized
        tokens.append(f"<0x{byte:02X}>")
        types.append(6)
    tokens.append("\u2581")  # SentencePiece's space
    types.append(1)
    for char in string.ascii_letters + string.digits + ".,!?'-:;()<>|/":
        tokens.append(char)
        types.append(1)
        tokens.append("\u2581" + char)
        types.append(1)
    scores = [0.0] * 259 + [-float(n) for n in range(len(tokens) - 259)]
    return tokens, scores, types


def main(path: str) -> None:
    rng = np.random.default_rng(10)
    tokens, scores, types = vocabulary()
    vocab = len(tokens)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("convostore tiny random llama")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weights(*shape: int) -> np.ndarray:  # type: ignore[type-arg]
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    output = weights(vocab, N_EMBD)
    output[:259] = 0.0  # never <unk>, <s>, bytes or an immediate </s>: printable answers
    writer.add_tensor("token_embd.weight", weights(vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(N_LAYER):
        name = f"blk.{layer}."
        writer.add_tensor(name + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(name + part + ".weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(name + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(name + "ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(name + "ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(name + "ffn_down.weight", weights(N_EMBD, N_FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1])

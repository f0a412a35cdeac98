import json
from pathlib import Path

import pytest

from qa.answer import Answer, Citation
from qa.errors import QAError
from qa.evaluate import evaluate, is_fragment, is_repeat, load_items, normalise


def test_normalise_follows_the_scoring_rule() -> None:
    assert (
        normalise("‘Low-intervention clinical trial’ means")
        == "'low-intervention clinical trial' means"
    )
    assert normalise("a **90 %** reduction — for SMEs") == "a 90 % reduction - for smes"
    assert normalise("> quoted | text\n\n  here") == "quoted text here"


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_load_items_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "a", "question": "q", "answerable": false}\nnot json\n')
    with pytest.raises(QAError, match="line 2"):
        load_items(path)
    write(path, [{"id": "a", "question": "q", "answerable": True}])
    with pytest.raises(QAError, match="evidence"):
        load_items(path)


def cited(*texts: str) -> tuple[Citation, ...]:
    return tuple(
        Citation(i + 1, f"c{i}", f"doc{i}", "T", "T", "Article 1", None, None, "", t, 1.0)
        for i, t in enumerate(texts)
    )


def test_metrics_on_a_scripted_system(tmp_path: Path) -> None:
    items = load_items(
        write(
            tmp_path / "gold.jsonl",
            [
                {
                    "id": "a",
                    "question": "qa",
                    "answerable": True,
                    "doc_id": "doc0",
                    "section": "Article 1",
                    "evidence": "thirty years",
                },
                {
                    "id": "b",
                    "question": "qb",
                    "answerable": True,
                    "doc_id": "doc1",
                    "section": "Article 1",
                    "evidence": "seven days",
                },
                {
                    "id": "c",
                    "question": "qc",
                    "answerable": True,
                    "doc_id": "doc9",
                    "section": "Article 1",
                    "evidence": "absent phrase",
                },
                {"id": "u", "question": "qu", "answerable": False},
            ],
        )
    )
    answers = {
        "qa": Answer(
            "qa", "It is kept for thirty years. [1]", False, cited("kept for THIRTY years", "other")
        ),
        "qb": Answer(
            "qb", "The following applies: [2]", False, cited("other", "within seven   days")
        ),
        "qc": Answer("qc", "", False, cited("nothing", "here")),
        "qu": Answer("qu", "", True),
    }
    report = evaluate(items, answers.__getitem__, k=5)
    summary = report.summary()
    assert summary["hit@1"] == round(1 / 3, 3) and summary["hit@3"] == round(2 / 3, 3)
    assert summary["mrr"] == round((1 + 0.5) / 3, 3)
    assert summary["doc@5"] == round(2 / 3, 3)
    assert summary["abstain_unanswerable"] == 1.0 and summary["abstain_answerable"] == 0.0
    assert [r.item.id for r in report.misses()] == ["b", "c"]
    assert summary["answer_accuracy"] == round(1 / 3, 3)  # only "a" states its evidence
    assert summary["citation1_accuracy"] == round(1 / 3, 3)
    assert summary["doc@1"] == round(1 / 3, 3)
    assert summary["fragment_rate"] == round(1 / 3, 3)  # "b" ends on a lead-in
    assert summary["refused_unanswerable"] == "1/1" and summary["refused_answerable"] == "0/3"
    assert report.results[1].problems() == [
        "evidence not in the answer",
        "citation [1] lacks it (rank 2)",
        "fragment",
    ]


def test_an_alternative_source_counts_like_the_primary(tmp_path: Path) -> None:
    row = {
        "id": "a",
        "question": "qa",
        "answerable": True,
        "doc_id": "doc5",
        "section": "Article 15",
        "evidence": "absent phrase",
        "alternatives": [{"doc_id": "doc0", "section": "regulation 4", "evidence": "30 years"}],
    }
    items = load_items(write(tmp_path / "gold.jsonl", [row]))
    answer = Answer("qa", "Keep it for 30 years. [1]", False, cited("keep it for 30 years"))
    summary = evaluate(items, lambda q: answer, k=5).summary()
    assert summary["answer_accuracy"] == 1.0 and summary["citation1_accuracy"] == 1.0
    assert summary["doc@1"] == 1.0


def test_fragments_are_units_cut_after_a_lead_in_or_a_conjunction() -> None:
    assert is_fragment("Condition B is that the product is used— [1]")
    assert is_fragment("(a) in a hospital; and [1] The rest. [2]")
    assert is_fragment("the following conditions: [1]")
    assert not is_fragment("Data shall be kept for 30 years. [1] EU: It applies. [2]")


def test_a_repeat_is_a_second_quote_saying_the_same_in_the_same_words() -> None:
    human = (
        "Within 60 days after receipt of the grounds for the request, the said Committee shall "
        "re-examine its opinion in accordance with the conditions laid down in Article 62(1)."
    )
    veterinary = human.replace("after receipt", "following receipt")
    assert is_repeat(f"{human} [1] {veterinary} [2]")
    assert is_repeat(f"EU: {human} [1] UK: {human} [2]")
    other = (
        "Within 15 days after receipt of the opinion, the applicant may request a re-examination."
    )
    assert not is_repeat(f"{human} [1] {other} [2]")
    assert not is_repeat(f"{human} [1]")

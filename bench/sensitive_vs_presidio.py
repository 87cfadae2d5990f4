"""Sensitive data classification: apiward vs Microsoft Presidio.

Generates a labelled corpus of realistic API bodies
(:mod:`apiward.sim.piicorpus`), classifies every leaf value with apiward's
:class:`~apiward.discover.sensitive.Classifier` and with
``presidio-analyzer`` (pattern recognizers over a blank spaCy pipeline: no
model download), and prints per-class and micro precision / recall / F1 at
the value level on the classes both support, plus throughput (values/s on
one core) and the speed ratio. apiward is also run *without* field names to
show how much the field-name evidence contributes. Finally it times
``classify_call`` over whole calls.

Usage: ``python bench/sensitive_vs_presidio.py [--docs 600] [--seed 7]
[--presidio-max 6000]``. Presidio is optional (``pip install
presidio-analyzer``); without it the script says so and reports apiward only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from apiward.discover.sensitive import Classifier  # noqa: E402
from apiward.sim.piicorpus import Labeled, generate  # noqa: E402
from apiward.testing import make_call  # noqa: E402

SHARED = ("email", "phone", "credit_card", "iban", "ssn", "ip_address")
OURS_TO_SHARED = {"internal_ip": "ip_address"}
PRESIDIO_TO_SHARED = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip_address",
}

Predict = Callable[[Labeled], set[str]]


def score(values: Sequence[Labeled], preds: Sequence[set[str]]) -> dict[str, tuple[int, int, int]]:
    """Per shared class (tp, fp, fn); a value's truth is its class plus
    ``also``, both mapped onto the shared classes."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for lv, pred in zip(values, preds):
        truth = {OURS_TO_SHARED.get(c, c) for c in (lv.cls, *lv.also) if c}
        main = OURS_TO_SHARED.get(lv.cls, lv.cls)
        for c in pred:
            if c not in SHARED:
                continue
            if c in truth:
                tp[c] += 1
            else:
                fp[c] += 1
        if main in SHARED and main not in pred:
            fn[main] += 1
    return {c: (tp[c], fp[c], fn[c]) for c in SHARED}


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def report(name: str, res: dict[str, tuple[int, int, int]]) -> float:
    print(f"\n{name}")
    print(f"  {'class':12} {'tp':>6} {'fp':>5} {'fn':>5} {'prec':>6} {'rec':>6} {'f1':>6}")
    T = F = N = 0
    for c in SHARED:
        tp, fp, fn = res[c]
        T, F, N = T + tp, F + fp, N + fn
        p, r, f = prf(tp, fp, fn)
        print(f"  {c:12} {tp:6d} {fp:5d} {fn:5d} {p:6.3f} {r:6.3f} {f:6.3f}")
    p, r, f = prf(T, F, N)
    print(f"  {'micro':12} {T:6d} {F:5d} {N:5d} {p:6.3f} {r:6.3f} {f:6.3f}")
    return f


def timed(values: Sequence[Labeled], predict: Predict, rounds: int = 1) -> tuple[list[set[str]], float]:
    """Predictions and values/s (best of ``rounds``)."""
    best = float("inf")
    preds: list[set[str]] = []
    for _ in range(rounds):
        t0 = time.process_time()
        preds = [predict(lv) for lv in values]
        best = min(best, time.process_time() - t0)
    return preds, len(values) / max(best, 1e-9)


def load_presidio() -> object | None:
    try:
        import spacy
        import tldextract.tldextract as tlx
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError:
        return None
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    # the email recognizer's tldextract would fetch the public suffix list;
    # use the snapshot bundled with the package instead (no network here)
    tlx.TLD_EXTRACTOR = tlx.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class BlankSpacyEngine(SpacyNlpEngine):
        """spaCy tokenizer only: no model download, no NER."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--presidio-max", type=int, default=6000, help="values given to Presidio (it is slow)")
    args = ap.parse_args(argv)

    docs = generate(args.docs, seed=args.seed)
    values = [lv for d in docs for lv in d.values]
    labelled = Counter(lv.cls for lv in values if lv.cls)
    decoys = sum(lv.decoy for lv in values)
    print(f"corpus: {len(docs)} documents, {len(values)} values, {sum(labelled.values())} sensitive, "
          f"{decoys} decoys, {len(values) - sum(labelled.values()) - decoys} other benign")
    print("  sensitive by class: " + ", ".join(f"{c}={n}" for c, n in labelled.most_common()))

    clf = Classifier()

    def ours(lv: Labeled) -> set[str]:
        return {OURS_TO_SHARED.get(c, c) for c, _ in clf.classify_value(lv.value, lv.field)}

    def ours_blind(lv: Labeled) -> set[str]:
        return {OURS_TO_SHARED.get(c, c) for c, _ in clf.classify_value(lv.value)}

    sub = values[: args.presidio_max]
    ours_preds, ours_vps = timed(values, ours, rounds=3)
    ours_sub_preds, ours_sub_vps = timed(sub, ours, rounds=3)
    blind_preds, _ = timed(values, ours_blind)
    f_ours = report(f"apiward (field names as evidence), all {len(values)} values", score(values, ours_preds))
    report("apiward without field names", score(values, blind_preds))

    # whole-call throughput
    calls = []
    for d in docs:
        if d.location == "request_body":
            calls.append(make_call("POST", "/api/login", req_body=d.body_bytes(), headers={"content-type": d.content_type}))
        else:
            calls.append(make_call("GET", "/api/x", status=d.status, body=d.body_bytes(),
                                   resp_headers={"content-type": d.content_type}))
    for c in calls:  # the pipeline decodes bodies once for everyone; time classification only
        c.request.json()
        if c.response is not None:
            c.response.json()
    t0 = time.process_time()
    nhits = sum(len(clf.classify_call(c)) for c in calls)
    dt = time.process_time() - t0
    print(f"\napiward classify_call: {len(calls) / dt:,.0f} calls/s per core ({nhits} hits over {len(calls)} calls)")
    print(f"apiward classify_value: {ours_vps:,.0f} values/s per core (all values), {ours_sub_vps:,.0f} on the Presidio subset")

    analyzer = load_presidio()
    if analyzer is None:
        print("\nPresidio: skipped (presidio-analyzer is not installed; `pip install presidio-analyzer` "
              "or the `presidio` extra to compare)")
        return 0

    def presidio_raw(lv: Labeled) -> list[tuple[str, float]]:
        ctx = [w for w in lv.field.replace("[]", "").replace("_", ".").split(".") if w]
        res = analyzer.analyze(text=lv.value, language="en", context=ctx or None)  # type: ignore[attr-defined]
        return [(PRESIDIO_TO_SHARED[r.entity_type], r.score) for r in res if r.entity_type in PRESIDIO_TO_SHARED]

    analyzer.analyze(text="warm up john@example.com", language="en")  # type: ignore[attr-defined]
    t0 = time.process_time()
    raw = [presidio_raw(lv) for lv in sub]
    pres_vps = len(sub) / (time.process_time() - t0)
    from importlib.metadata import version as _version

    version = _version("presidio-analyzer")
    print(f"\nPresidio {version} on the first {len(sub)} values "
          "(pattern recognizers, blank spaCy pipeline, field names given as context words)")
    best_f = 0.0
    for th in (0.0, 0.3, 0.5):
        preds = [{c for c, sc in r if sc >= th} for r in raw]
        best_f = max(best_f, report(f"Presidio, score >= {th}", score(sub, preds)))
    f_sub = report(f"apiward on the same {len(sub)} values", score(sub, ours_sub_preds))
    print(f"\nthroughput: apiward {ours_sub_vps:,.0f} values/s, Presidio {pres_vps:,.0f} values/s, "
          f"ratio {ours_sub_vps / pres_vps:,.0f}x")
    print(f"micro F1: apiward {f_sub:.3f} vs Presidio best {best_f:.3f} (all-values apiward F1 {f_ours:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

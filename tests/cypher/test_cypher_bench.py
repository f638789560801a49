"""`quiver bench cypher` at a tiny size: it runs end to end and its answers match the view's."""

from cypher.bench import CypherBenchConfig, run


def test_cypher_bench_runs_small_and_engine_answers_match_the_view() -> None:
    lines: list[str] = []
    config = CypherBenchConfig(
        persons=200, knows=800, batch=100, lookups=20, friend_of_friend=20, seed=3
    )
    run(config, out=lines.append)
    text = "\n".join(lines)
    assert "Load: 200 :Person and 800 :KNOWS" in text
    assert "point lookup" in text and "friend-of-friend" in text
    assert "!!" not in text, text

"""Property-based tests (hypothesis) of the addition generator and the fixed-width loader."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.core.errors import DataError
from seq2seq.data.addition import START, FixedWidthPairs, format_fixed_width, generate_addition, load_fixed_width

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Any character but the separator and line breaks may appear in questions and answers.
CHARS = st.characters(blacklist_characters=f"{START}\n\r", blacklist_categories=("Cs",))


@st.composite
def well_formed(draw) -> FixedWidthPairs:
    q_width = draw(st.integers(1, 8))
    a_width = draw(st.integers(1, 6))
    n = draw(st.integers(1, 20))
    questions = [draw(st.text(CHARS, min_size=q_width, max_size=q_width)) for _ in range(n)]
    answers = [START + draw(st.text(CHARS, min_size=a_width, max_size=a_width)) for _ in range(n)]
    return FixedWidthPairs(questions, answers)


@SETTINGS
@given(data=well_formed())
def test_any_well_formed_file_round_trips(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("prop") / "pairs.txt"
    path.write_text(format_fixed_width(data), encoding="utf-8")
    assert load_fixed_width(path) == data


@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_loads_or_fails_with_a_data_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("prop") / "any.txt"
    path.write_text(text, encoding="utf-8", newline="")
    try:
        data = load_fixed_width(path)
    except DataError as e:
        assert str(path) in str(e)
    else:
        assert len({len(q) for q in data.questions}) == 1 and len({len(a) for a in data.answers}) == 1


@SETTINGS
@given(payload=st.binary(max_size=100))
def test_any_bytes_load_or_fail_with_a_data_error(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("prop") / "bytes.txt"
    path.write_bytes(payload)
    try:
        load_fixed_width(path)
    except DataError as e:
        assert str(path) in str(e)


@SETTINGS
@given(n=st.integers(1, 300), max_digits=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_generator_properties(n, max_digits, seed):
    if n > 55 and max_digits == 1:
        n = 55  # only 55 distinct one-digit questions exist
    data = generate_addition(n, max_digits, seed)
    assert len({tuple(sorted(map(int, q.split("+")))) for q in data.questions}) == n
    assert {len(q) for q in data.questions} == {2 * max_digits + 1}
    for q, a in zip(data.questions, data.answers, strict=True):
        x, y = map(int, q.split("+"))
        assert int(a[1:]) == x + y and len(a) == max_digits + 2
    assert generate_addition(n, max_digits, seed) == data

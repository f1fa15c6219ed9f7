"""Focused tests of the answer grader, one behaviour each."""

from __future__ import annotations

import random

import pytest

from anesbench.grading import METHODS, Extraction, extract_answer, strip_think
from anesbench.grading._normalize import normalize
from anesbench.grading._rules import RULES, Example, Rule
from anesbench_testkit.corpus import grading_patterns

MH = {"A": "Propofol", "B": "Ketamine", "C": "Dantrolene", "D": "Succinylcholine"}
ZMH = {"A": "丙泊酚", "B": "氯胺酮", "C": "丹曲林", "D": "琥珀胆碱"}
VIT = {"A": "Vitamin A toxicity", "B": "Vitamin K deficiency", "C": "Hepatitis C infection", "D": "Type A personality"}


def pred(response: str, choices: dict[str, str] = MH, finish_reason: str | None = "stop") -> str | None:
    return extract_answer(choices, response, finish_reason=finish_reason).pred


def method(response: str, choices: dict[str, str] = MH, finish_reason: str | None = "stop") -> str:
    return extract_answer(choices, response, finish_reason=finish_reason).method


# ------------------------------------------------------------------ the rule table
EXAMPLES = [
    pytest.param(example, id=f"{rule.name}-{kind}{i}")
    for rule in RULES
    for kind, examples in (("positive", rule.positive), ("negative", rule.negative))
    for i, example in enumerate(examples)
]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_rule_example_grades_as_labelled(example: Example) -> None:
    got = extract_answer(dict(example.choices), example.reply, finish_reason=example.finish_reason)
    assert got.pred == example.expected, got


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_rule_has_positive_and_negative_examples(rule: Rule) -> None:
    assert rule.positive and rule.negative


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_positive_example_is_matched_by_its_rule_and_reports_its_method(rule: Rule) -> None:
    unmatched = [e.reply for e in rule.positive if rule.pattern.search(normalize(strip_think(e.reply)).lower()) is None]
    assert unmatched == []
    methods = [extract_answer(dict(e.choices), e.reply, finish_reason=e.finish_reason).method for e in rule.positive]
    assert methods == [rule.method if e.expected else "none_ambiguous" for e in rule.positive]


def test_rules_have_unique_names_and_report_known_methods() -> None:
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert {rule.method for rule in RULES} <= set(METHODS)


def test_no_pattern_names_a_domain_word() -> None:
    domain = ("drug", "antidote", "nerve", "predictor", "treatment", "intravenous", "oral", "indicated", "维生素",
              "肝炎", "病毒", "静脉", "药物", "患者", "临床")
    named = [(p.pattern[:60], w) for p in grading_patterns() for w in domain if w in p.pattern]
    assert named == []


def test_fewer_compiled_patterns_than_the_88_of_the_phrase_by_phrase_grader() -> None:
    assert len(grading_patterns()) < 88


def test_finish_reason_is_optional() -> None:
    assert extract_answer(MH, "The answer is C.") == Extraction("C", "final_answer_phrase")


# ------------------------------------------------------------------ final-answer phrases
@pytest.mark.parametrize("reply", [
    "The answer is C", "Final answer: (C)", "Answer: C.", "Correct option: C", "I would choose C",
    "The correct answer is option C.", "So the best answer is C) Dantrolene.", "C is the correct answer.",
    "My final answer is C", "Let's go with C.", "The answer to this question is C.",
])
def test_english_final_answer_phrases(reply: str) -> None:
    assert extract_answer(MH, reply) == Extraction("C", "final_answer_phrase")


@pytest.mark.parametrize("reply", [
    "答案：C", "答案是 C", "正确答案为C", "最终答案：(C)", "故选C", "选C", "应选 C", "本题答案为C。", "答：C",
    "正确答案应该是C选项", "C是正确答案。",
])
def test_chinese_final_answer_phrases(reply: str) -> None:
    assert extract_answer(ZMH, reply) == Extraction("C", "final_answer_phrase")


def test_phrase_near_the_end_beats_letters_in_the_analysis() -> None:
    reply = "Option A is a safe agent. Option B is commonly used. Option D is a trigger.\n\nThe answer is C."
    assert pred(reply) == "C"


# ------------------------------------------------------------------ formatting
def test_bold_answer() -> None:
    assert pred("**Answer: B**\n\nKetamine preserves airway reflexes.") == "B"


def test_markdown_heading_then_bold_letter() -> None:
    assert pred("## Analysis\nSome text.\n\n## Answer\n**C**") == "C"


def test_chinese_heading_then_letter_line() -> None:
    assert pred("### 分析\n……\n\n### 答案\n**A. 氯胺酮**", {"A": "氯胺酮", "B": "氯胺酮"}) == "A"
    assert pred("本题考查的是下列哪个答案\nA项错误，C项正确。", ZMH) == "C"


def test_option_list_header_is_not_an_answer() -> None:
    assert pred("Let's evaluate each option:\nOption A is wrong.\nOption C is correct.") == "C"


def test_boxed_letter() -> None:
    assert extract_answer(MH, "Thus $\\boxed{C}$.") == Extraction("C", "boxed")


def test_boxed_text_letter() -> None:
    assert extract_answer(MH, "\\[ \\boxed{\\text{C}} \\]") == Extraction("C", "boxed")


def test_boxed_option_text() -> None:
    assert extract_answer(MH, "\\boxed{\\text{Dantrolene}}") == Extraction("C", "boxed")


def test_json_answer() -> None:
    assert extract_answer(MH, '{"answer": "B", "reason": "..."}') == Extraction("B", "json")


def test_json_list_of_two_letters_is_ambiguous() -> None:
    assert extract_answer(MH, '{"answer": ["A", "C"]}') == Extraction(None, "none_ambiguous")


def test_answer_tag() -> None:
    assert extract_answer(MH, "<answer>D</answer>") == Extraction("D", "answer_tag")


@pytest.mark.parametrize("reply", ["(C)", "[C]", "C)", "Answer: [C]", "The answer is (C)."])
def test_brackets_and_parentheses(reply: str) -> None:
    assert pred(reply) == "C"


# ------------------------------------------------------------------ full-width and case
@pytest.mark.parametrize("reply", ["Ｃ", "答案：Ｃ", "最终答案：（Ｃ）", "故选Ｃ。", "答案【C】"])
def test_full_width_letters_and_punctuation(reply: str) -> None:
    assert pred(reply, ZMH) == "C"


def test_circled_letter() -> None:
    assert pred("答案：Ⓒ", ZMH) == "C"


def test_lowercase_letter() -> None:
    assert pred("the answer is c") == "C"


def test_english_article_a_is_not_option_a() -> None:
    assert pred("The answer is a drug that blocks RyR1 calcium release.", {"A": "Propofol", "B": "Ketamine"}) is None


def test_lowercase_a_at_the_end_of_a_sentence_is_option_a() -> None:
    assert pred("so the answer is a.") == "A"


def test_e_g_is_not_option_e() -> None:
    choices = {**MH, "E": "Midazolam"}
    assert pred("The answer is C. Other agents (the answer is e.g. not relevant) are distractors.", choices) == "C"


# ------------------------------------------------------------------ verdicts
def test_english_verdicts_with_one_correct_option() -> None:
    reply = "A is incorrect. B is incorrect. C is correct. D is incorrect."
    assert extract_answer(MH, reply) == Extraction("C", "verdict")


def test_chinese_verdicts_with_one_correct_option() -> None:
    assert extract_answer(ZMH, "A 错误，B 错误，C 正确，D 错误。") == Extraction("C", "verdict")


def test_labelled_verdict_lines() -> None:
    reply = "A. Propofol: incorrect.\nB. Ketamine: incorrect.\nC. Dantrolene: correct.\nD. Succinylcholine: wrong."
    assert extract_answer(MH, reply) == Extraction("C", "verdict")


def test_two_options_judged_correct_is_ambiguous() -> None:
    assert extract_answer(MH, "A is incorrect. B is correct. C is correct. D is wrong.") == Extraction(
        None, "none_ambiguous")


def test_verb_correct_is_not_a_verdict() -> None:
    reply = ("A. Propofol: used to correct agitation.\nB. Ketamine: wrong.\nC. Dantrolene: correct.\n"
             "D. Succinylcholine: wrong.")
    assert pred(reply) == "C"


def test_attributive_correct_is_not_a_verdict() -> None:
    reply = ("A. Propofol: a common misconception; the correct drug is dantrolene.\nB. Ketamine: wrong.\n"
             "C. Dantrolene: correct.\nD. Succinylcholine: wrong.")
    assert pred(reply) == "C"


def test_attributive_chinese_correct_is_not_a_verdict() -> None:
    reply = "A. 丙泊酚：正确的治疗药物应为丹曲林，故错误。\nB. 氯胺酮：错误。\nC. 丹曲林：正确。\nD. 琥珀胆碱：错误。"
    assert pred(reply, ZMH) == "C"


def test_a_later_verdict_on_the_same_letter_stands() -> None:
    assert pred("A is correct. Hmm, actually A is wrong. C is correct. B and D are wrong.") == "C"


# ------------------------------------------------------------------ negation
def test_not_letter_is_not_an_answer() -> None:
    assert pred("It is not A.") is None


def test_letter_is_not_the_answer() -> None:
    assert pred("A is not the answer.") is None


def test_answer_is_not_letter() -> None:
    assert pred("The answer is not A.") is None


def test_not_a_but_c() -> None:
    assert pred("The answer is not A but C.") == "C"


def test_chinese_not_choose() -> None:
    assert pred("不选A。", ZMH) is None


def test_chinese_answer_is_not() -> None:
    assert pred("答案不是A，而是C。", ZMH) == "C"


def test_answer_label_followed_by_a_negative_verdict_is_not_a_commitment() -> None:
    assert pred("Answer: A is incorrect because propofol does not treat MH. C is correct.") == "C"
    assert pred("答案A项错误，C项正确。", ZMH) == "C"


def test_wrong_answer_phrase_is_not_a_commitment() -> None:
    assert pred("The wrong answer is A; the trap is obvious.") is None


def test_negated_option_text_does_not_count() -> None:
    assert pred("Definitely not propofol.") is None


def test_hypothetical_answer_is_not_a_commitment() -> None:
    assert pred("The answer is C. Option A would be the answer if the question asked about induction.") == "C"
    assert pred("If the answer were A, the patient would not improve. So it's C.") == "C"
    assert pred("If we consider the timing, the answer is C.") == "C"


def test_letter_put_as_a_question_is_not_a_commitment() -> None:
    assert pred("答案是B吗？不是，是C。", ZMH) == "C"
    assert pred("The answer is B? No.") is None


def test_two_alternatives_are_ambiguous() -> None:
    assert extract_answer(MH, "It could be A or C.") == Extraction(None, "none_ambiguous")
    assert extract_answer(ZMH, "可能是B，也可能是C。") == Extraction(None, "none_ambiguous")


def test_elimination_leaving_one_option() -> None:
    assert extract_answer(MH, "Options A, B and D can be excluded, leaving C.") == Extraction("C", "conclusion")


def test_option_label_in_chinese_analysis_is_not_a_choice() -> None:
    reply = "A选项丙泊酚为安全药物；B选项氯胺酮无影响；D选项琥珀胆碱为触发药物。"
    assert pred(reply, ZMH) is None


# ------------------------------------------------------------------ self-correction
def test_last_explicit_answer_wins() -> None:
    assert pred("Initially I thought A, but the answer is actually B.") == "B"


def test_chinese_correction() -> None:
    assert pred("答案是A。不对，更正：答案是C", ZMH) == "C"
    assert pred("答案是A。修正为C。", ZMH) == "C"
    assert pred("排除A、B、D，只剩C。", ZMH) == "C"


def test_change_my_answer() -> None:
    assert pred("I'd go with A... no. I'll change my answer to C.") == "C"


def test_wait_its() -> None:
    assert pred("The answer is A. Wait, actually it's C.") == "C"


# ------------------------------------------------------------------ think traces
def test_think_block_is_ignored() -> None:
    assert pred("<think>Could it be A? Or B? The answer is A.</think>\nThe answer is C.") == "C"


def test_only_think_means_no_answer() -> None:
    assert extract_answer(MH, "<think>The answer is C.</think>") == Extraction(None, "none_empty")


def test_unclosed_think_means_no_answer() -> None:
    assert extract_answer(MH, "<think>The answer is C, let me double-check", finish_reason="length") == Extraction(
        None, "none_truncated")


def test_orphan_closing_think_tag() -> None:
    assert pred("the answer might be A</think>\n\nAnswer: C") == "C"


def test_strip_think() -> None:
    assert strip_think("<think>a\nb</think>\n\nAnswer: C") == "Answer: C"
    assert strip_think("<think>\nunfinished A or B") == ""
    assert strip_think("A<think>x</think>B") == "A\nB"
    assert strip_think("no tags") == "no tags"
    assert strip_think("reasoning</think>Answer: D") == "Answer: D"


# ------------------------------------------------------------------ letters inside words and option text
def test_letters_inside_option_text_do_not_count() -> None:
    reply = ("Vitamin A toxicity does not prolong PT. Hepatitis C would not correct with vitamin K. "
             "Type A personality is irrelevant.")
    assert pred(reply, VIT) is None


def test_vitamin_a_is_not_the_answer_a() -> None:
    assert pred("Vitamin A is the correct answer? No: Vitamin K deficiency is.", VIT) == "B"


def test_hyphenated_and_numbered_letters_do_not_count() -> None:
    assert pred("Spread to C3-C5 and type-B fibres is expected; ETCO2 falls.") is None


# ------------------------------------------------------------------ option text
def test_reply_naming_only_the_option_text() -> None:
    assert extract_answer(MH, "The best choice is dantrolene.") == Extraction("C", "option_text")


def test_chinese_option_text() -> None:
    assert extract_answer(ZMH, "首选丹曲林。") == Extraction("C", "option_text")


def test_two_option_texts_are_ambiguous() -> None:
    assert pred("Either propofol or ketamine would work.") is None


def test_unsure_short_reply_naming_an_option_is_no_answer() -> None:
    assert pred("Dantrolene is used for MH, but I'm not sure what this question is after.") is None


def test_option_text_is_exact_not_fuzzy() -> None:
    assert pred("The best choice is dantrolen.") is None


def test_option_text_needs_word_boundaries() -> None:
    assert pred("Use propofolamine.", {"A": "Propofol", "B": "Ketamine"}) is None


# ------------------------------------------------------------------ refusals, truncation, ambiguity, empty
@pytest.mark.parametrize("reply", [
    "I cannot provide medical advice.", "I'm sorry, but I can't help with that.", "As an AI, I am unable to answer.",
    "我无法回答这个问题。", "抱歉，我不能提供医疗建议。",
])
def test_refusals(reply: str) -> None:
    assert extract_answer(MH, reply) == Extraction(None, "none_refusal")


def test_refusal_with_answer_still_answers() -> None:
    assert pred("I cannot give medical advice, but for exam purposes the answer is C.") == "C"


def test_truncated_reasoning_without_answer() -> None:
    reply = "Let's analyze each option. A is incorrect because propofol is safe. C is correct since dantrolene"
    assert extract_answer(MH, reply, finish_reason="length") == Extraction(None, "none_truncated")


def test_truncated_reply_with_committed_answer() -> None:
    assert pred("Answer: C\n\nExplanation: dantrolene blocks the ryanodine", finish_reason="length") == "C"


def test_truncated_reply_cut_right_after_a_conclusion_letter_is_not_an_answer() -> None:
    assert pred("Propofol is safe; the key point is the trigger. Therefore, C", finish_reason="length") is None
    assert pred("Propofol is safe. Therefore, C. Dantrolene blocks", finish_reason="length") == "C"


def test_truncated_reply_ending_in_a_letter_line_is_not_an_answer() -> None:
    assert pred("Let's go through the options.\nA", finish_reason="length") is None


@pytest.mark.parametrize("reply", [
    "The answer is A or C.", "A and C are both correct.", "答案是A和C", "The answer is either B or D.", "A、C均正确",
])
def test_two_final_answers_are_ambiguous(reply: str) -> None:
    assert extract_answer(MH, reply) == Extraction(None, "none_ambiguous")


@pytest.mark.parametrize("reply", ["", "   \n ", "<think>x</think>"])
def test_empty(reply: str) -> None:
    assert extract_answer(MH, reply) == Extraction(None, "none_empty")


def test_unparseable_reply_is_no_match() -> None:
    assert extract_answer(MH, "This is a complex clinical question with many considerations.") == Extraction(
        None, "none_no_match")


# ------------------------------------------------------------------ lone letters and conclusions
@pytest.mark.parametrize("reply", ["C", "C.", "(C)", "**C**", "C。", " c "])
def test_lone_letter(reply: str) -> None:
    assert extract_answer(MH, reply) == Extraction("C", "lone_letter")


def test_letter_with_option_text() -> None:
    assert extract_answer(MH, "C. Dantrolene") == Extraction("C", "letter_with_text")


def test_letter_line_with_a_negative_verdict_is_not_an_answer() -> None:
    assert pred("C. Dantrolene — Incorrect here") is None


def test_letter_with_another_options_text_is_ambiguous() -> None:
    assert extract_answer(MH, "C. Propofol") == Extraction(None, "none_ambiguous")


def test_restated_option_list_is_not_an_answer() -> None:
    assert pred("A. Propofol\nB. Ketamine\nC. Dantrolene\nD. Succinylcholine") is None


def test_conclusion_after_analysis() -> None:
    reply = "1. Propofol is safe but not a treatment.\n2. Succinylcholine triggers MH.\n\nTherefore, C."
    assert extract_answer(MH, reply) == Extraction("C", "conclusion")


def test_chinese_conclusion() -> None:
    assert extract_answer(ZMH, "丹曲林是特效药。所以C。") == Extraction("C", "conclusion")


# ------------------------------------------------------------------ choice restriction
def test_letter_outside_the_choices_is_not_a_prediction() -> None:
    assert extract_answer(MH, "The answer is E.") == Extraction(None, "none_invalid_choice")


def test_lone_letter_outside_the_choices() -> None:
    assert pred("F") is None


def test_lowercase_choice_keys_are_accepted() -> None:
    assert pred("The answer is B.", {"a": "Propofol", "b": "Ketamine"}) == "B"


def test_eight_options() -> None:
    choices = {k: f"Block {k.lower()}{k.lower()}" for k in "ABCDEFGH"}
    assert pred("The answer is H.", choices) == "H"


# ------------------------------------------------------------------ robustness and speed sanity
def test_never_raises_on_random_text() -> None:
    rng = random.Random(7)
    alphabet = "ABCDEFGH abcdefgh.,:()[]{}*#\\<>/\n答案选是不对正确错误ＡＢＣ（）：。" + "\u2019\u201c"
    for _ in range(500):
        reply = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        got = extract_answer(MH, reply, finish_reason=rng.choice(["stop", "length", None]))
        assert got.method in METHODS and (got.pred is None or got.pred in MH)
        assert (got.pred is None) == got.method.startswith("none_"), (reply, got)


@pytest.mark.parametrize("run", [" " * 5000, "\t \u2003" * 2000, "\n" * 5000, " \n" * 3000])
def test_every_whitespace_run_becomes_one_space_line_break_or_blank_line(run: str) -> None:
    # several optional-space steps in a row backtrack polynomially over a long run: none reaches a rule
    expected = " " if "\n" not in run else "\n\n"
    assert normalize(f"The answer is{run}x") == f"The answer is{expected}x"
    assert pred(f"The answer is{run}C") == "C"


@pytest.mark.parametrize("reply, choices", [
    ("The answer is A. 2%\n\nThe answer is B. 6%\n\nThe answer is A. 2%", MH),
    ("The answer is B.\n\nThe answer is D.\n\nThe answer is C.", MH),
    ("答案是A。\n答案是B。\n答案是A。", ZMH),
])
def test_final_answers_that_go_round_are_no_answer(reply: str, choices: dict[str, str]) -> None:
    assert extract_answer(choices, reply) == Extraction(None, "none_ambiguous")


def test_a_loop_is_seen_in_the_whole_reply_not_only_its_tail() -> None:
    # A, then B, then C for hundreds of lines: the tail alone would read as one steady answer
    reply = "The answer is A.\n\nThe answer is B.\n\n" + "The answer is C.\n\n" * 60
    assert extract_answer(MH, reply, finish_reason="length") == Extraction(None, "none_ambiguous")
    assert pred("The answer is A.\n\n" + "The answer is A.\n\n" * 60) == "A"


def test_an_opening_option_line_is_the_first_answer_stated() -> None:
    opening = f"A. {MH['A']}\n\n"
    assert pred(opening + f"The correct answer is D. {MH['D']}.\n\nThe correct answer is A. {MH['A']}.") is None
    assert pred(opening + "The answer is D.\n\nThe answer is D.") == "D"  # corrected once, then held
    listing = "".join(f"{letter}. {text}\n" for letter, text in MH.items())
    assert pred(listing + "\nThe answer is D.\n\nThe answer is A.") == "A"  # a list of options states nothing


def test_one_correction_still_counts() -> None:
    assert pred("The answer is A.\n\nWait, no. The answer is C.\n\nThe answer is C.") == "C"


def test_long_reply_is_handled() -> None:
    body = "Dantrolene reduces calcium release from the sarcoplasmic reticulum. " * 300
    assert pred(body + "\nThe answer is C.") == "C"
    assert pred("The answer is C.\n" + body) == "C"


@pytest.mark.parametrize("reply", [
    "A, B, C, D, " * 3000, "A、B、C、D、" * 4000, "the answer is " * 2000, "(" * 20000 + "C" + ")" * 20000,
    "\\boxed{" * 5000, '{"answer": "' * 5000, "A is incorrect. " * 3000, "A项错误。" * 5000,
])
def test_pathological_replies_are_linear_and_answer_nothing(reply: str) -> None:
    # not timed: a quadratic pattern would take minutes here (and trip pytest-timeout)
    assert extract_answer(MH, reply).pred is None


@pytest.mark.timeout(30)
def test_thousands_of_unclosed_think_tags_are_stripped_in_linear_time() -> None:
    # A quadratic scan took about ten minutes on this input; a linear one takes milliseconds.
    assert extract_answer({"A": "x", "B": "y"}, "<think>" * 150_000) == Extraction(None, "none_empty")
    assert strip_think("x<think>y</think>z<think>w") == "x\nz"
    assert strip_think("<think>a</thinking>The answer is B.") == "The answer is B."


# ------------------------------------------------------------------ shapes of small models' replies
@pytest.mark.parametrize("reply", [
    "【答案】C", "【正确答案】C\n【解析】丹曲林是特效药。", "【解析】琥珀胆碱是触发药物。\n【答案】C", "【答案】：C项",
    "[Answer] C",
    "【Answer】C\n【Rationale】dantrolene", "**[Correct answer]**: C",
])
def test_bracketed_answer_headers(reply: str) -> None:
    assert extract_answer(ZMH if not reply.isascii() else MH, reply) == Extraction("C", "final_answer_phrase")


@pytest.mark.parametrize("reply", ["【答案】B或C", "【答案】A、C", "[Answer] B or C", "【答案】\n【解析】略"])
def test_bracketed_headers_naming_two_letters_or_none_are_no_answer(reply: str) -> None:
    assert pred(reply, ZMH) is None


@pytest.mark.parametrize("reply", [
    "以上选项中，C最符合。", "最符合题意的是C。", "C项最为合适。", "相比之下，C更符合临床需要。", "最恰当的处理是C。",
    "Of the options above, C fits best.", "The option that best fits this scenario is C.", "C is the most fitting choice.",
])
def test_best_fit_phrasings(reply: str) -> None:
    assert pred(reply, ZMH if not reply.isascii() else MH) == "C"


@pytest.mark.parametrize("reply", [
    "以上选项中，B和C都比较符合。", "B和C最符合。", "以上选项中，C最符合？但B也有道理。", "不是C最符合。",
    "Both B and C fit best.",
])
def test_best_fit_naming_two_options_or_asking_is_no_answer(reply: str) -> None:
    assert pred(reply, ZMH if not reply.isascii() else MH) is None


def test_chinese_per_option_verdicts_inside_one_sentence() -> None:
    reply = "A选项丙泊酚不能治疗恶性高热；B选项氯胺酮无关；C选项丹曲林抑制钙释放，是正确的；D选项琥珀胆碱是触发药物。"
    assert extract_answer(ZMH, reply) == Extraction("C", "verdict")


def test_two_options_called_correct_in_one_sentence_is_ambiguous() -> None:
    assert extract_answer(ZMH, "A选项是正确的，C选项也是正确的。") == Extraction(None, "none_ambiguous")


def test_a_segment_judged_both_ways_makes_the_verdicts_abstain() -> None:
    reply = "Option A is wrong.\nOption B is correct in children but wrong in adults.\nOption C is wrong."
    assert pred(reply) is None


def test_letter_with_text_line_that_goes_on_to_other_options_is_not_an_answer() -> None:
    reply = "Option A, propofol, is an induction agent. Option B, ketamine, has no role. Option C, dantrolene, works."
    assert pred(reply) is None


def test_letter_with_a_short_option_text_on_its_own_line() -> None:
    assert extract_answer({"A": "2%", "B": "6%", "C": "1.2%", "D": "0.75%"}, "B. 6%") == Extraction("B", "letter_with_text")


def test_answer_phrase_ending_the_line_with_the_letter_and_text_on_the_next() -> None:
    reply = ("A. Propofol - not indicated.\nB. Ketamine - not indicated.\n"
             "Therefore, the most suitable single choice is:\nC. Dantrolene\nUnlike propofol, it blocks calcium release.")
    assert extract_answer(MH, reply) == Extraction("C", "final_answer_phrase")


@pytest.mark.parametrize(("reply", "letter"), [
    ("Esmolol and nitroglycerin would worsen it; phenylephrine is the drug to give.", "A"),
    ("The treatment of choice is phenylephrine, not esmolol.", "A"),
    ("Lipid emulsion is the cornerstone; vasopressin should be avoided.", None),  # "20% lipid emulsion" ≠ hypo list
])
def test_option_content_named_as_the_answer(reply: str, letter: str | None) -> None:
    hypo = {"A": "Phenylephrine", "B": "Esmolol", "C": "Nitroglycerin", "D": "Vasopressin"}
    assert pred(reply, hypo) == letter


def test_option_named_without_its_concentration_or_route() -> None:
    last = {"A": "20% lipid emulsion", "B": "Sodium bicarbonate", "C": "Intravenous vasopressin", "D": "Propranolol"}
    assert pred("Start lipid emulsion now; vasopressin should be avoided.", last) == "A"


def test_options_listed_before_a_negation_are_all_negated() -> None:
    assert pred("丙泊酚和琥珀胆碱都会加重病情，应该使用丹曲林。", ZMH) == "C"


def test_verdicts_do_not_decide_when_an_unread_final_answer_follows_them() -> None:
    doses = {"A": "0.25 mg/kg", "B": "1 mg/kg", "C": "2.5 mg/kg", "D": "10 mg/kg"}
    reply = "A. 0.25 mg/kg - too low.\nB. 1 mg/kg - this option is correct.\nThe correct answer is: 2.5 mg per kilogram"
    assert pred(reply, doses) is None


def test_truncated_reply_after_naming_an_option_as_the_answer_stands() -> None:
    tof = {"A": "0.25", "B": "0.5", "C": "0.7", "D": "0.9"}
    reply = "A. 0.25\n- not recommended.\n\nAfter analyzing each option, 0.9 is the most appropriate choice for excluding resid"
    assert extract_answer(tof, reply, finish_reason="length") == Extraction("D", "option_text")


def test_truncated_reply_before_any_commitment_is_no_answer() -> None:
    tof = {"A": "0.25", "B": "0.5", "C": "0.7", "D": "0.9"}
    reply = "A. 0.25\n- not recommended.\n\nB. 0.5\n- 0.5 is the ratio that"
    assert extract_answer(tof, reply, finish_reason="length") == Extraction(None, "none_truncated")


def test_an_answer_that_is_not_an_option_is_no_answer() -> None:
    volumes = {"A": "50 mL", "B": "60 mL", "C": "70 mL", "D": "80 mL"}
    assert pred("Tidal volume = 7 mL/kg x 8 kg.\nTherefore, the answer is: 56 mL", volumes) is None


def test_a_repetition_loop_after_a_commitment_keeps_it() -> None:
    reply = "The answer is C. " + "Dantrolene is the treatment. " * 60
    assert extract_answer(MH, reply, finish_reason="length").pred == "C"


@pytest.mark.parametrize("reply", [
    "The drug of choice for asthma is ketamine, but for this patient propofol is better.",
    "A. Propofol is indicated for sedation.\nB. Ketamine has a role in asthma.",
])
def test_a_contrast_or_an_incidental_indication_is_no_answer(reply: str) -> None:
    assert pred(reply) is None


def test_a_comparison_of_two_of_four_options_commits_to_neither() -> None:
    assert pred("A比B更合适。", ZMH) is None


@pytest.mark.parametrize(("reply", "choices"), [
    ("A. Propofol: no.\nB. Ketamine: no.\nGiven the information provided, the most appropriate drug here is:\n"
     "C. Dantrolene\nThis drug is specifically designed for this crisis, unlike succinylcholine.", MH),
    ("Based on the analysis, the most likely cause of the described scenario is:\nC. Dantrolene", MH),
    ("综合分析，最可能的原因是：\nC. 丹曲林\n其余选项与题干不符。", ZMH),
])
def test_superlative_phrase_ending_its_line_then_the_letter_with_its_own_text(reply: str, choices: dict[str, str]) -> None:
    assert extract_answer(choices, reply) == Extraction("C", "final_answer_phrase")


@pytest.mark.parametrize("reply", [
    "The most appropriate options to consider are listed; the best is:\nC. Propofol",  # letter and text disagree
    "The most likely cause is:\nA. Propofol - not the cause\nB. Ketamine - not the cause",
    "The most appropriate drug is:\nA. Propofol\nB. Ketamine\nC. Dantrolene",
])
def test_superlative_phrase_before_a_list_or_a_mismatch_is_no_answer(reply: str) -> None:
    assert pred(reply) is None


def test_a_letter_followed_by_another_options_exact_text_is_no_answer() -> None:
    reply = "答案是C。氯胺酮。"
    assert extract_answer(ZMH, reply) == Extraction(None, "none_ambiguous")


def test_a_letter_followed_by_a_sentence_that_starts_with_another_option_stands() -> None:
    assert pred("The answer is C — propofol cannot treat it, whereas dantrolene can.") == "C"


def test_chinese_answer_is_colon_letter() -> None:
    assert pred("最终答案是：C. 丹曲林。", ZMH) == "C"


def test_options_listed_before_a_negation_are_all_negated_in_a_short_reply() -> None:
    assert pred("丙泊酚、氯胺酮和琥珀胆碱都不会有效。丹曲林。", ZMH) == "C"


def test_chinese_answer_is_colon_newline_then_the_letter_with_its_own_text() -> None:
    reply = "答案是A。但并不是唯一的正确答案。因此，正确答案应该是：\n\nB. 错误"
    assert pred(reply, {"A": "正确", "B": "错误"}) == "B"


def test_a_letter_whose_next_sentence_is_about_another_option_only_is_no_answer() -> None:
    reply = "答案是C。琥珀胆碱的作用时间受器官功能影响最小。"
    assert pred(reply, ZMH) is None


def test_a_reply_cut_off_inside_the_answers_own_text_keeps_it() -> None:
    shock = {"A": "Hypovolaemia; give fluids", "B": "Septic shock; start noradrenaline, targeting a MAP of 65"}
    reply = "A. Hypovolaemia; give fluids - not suitable.\nSo the most suitable single choice is:\nB. Septic shock; start nor"
    assert extract_answer(shock, reply, finish_reason="length") == Extraction("B", "final_answer_phrase")

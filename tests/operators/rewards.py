"""GRPO reward functions that tests name by import path (``tests.operators.rewards:...``)."""


def length_reward(prompt, completion, example):
    return min(len(completion) / 100.0, 1.0)


def two_arguments(prompt, completion):
    return 0.0

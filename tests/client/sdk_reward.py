"""A GRPO reward function, byte-for-byte the one the expected SDK bodies were encoded from."""


def exact_match(prompt, completion, example):
    return float(completion.strip() == example["completion"].strip())

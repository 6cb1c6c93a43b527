"""Meta-training (paper Sec. 3.4): the MCAT loop and its policy-transfer rule."""

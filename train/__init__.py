"""Training stage (needs the ``train`` extra): aclImdb text to a trained Keras BiLSTM."""

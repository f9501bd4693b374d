"""Text front end for the phone: tokenizer, sentence encoder, intents."""

"""Audio front end: speech synthesis for data, MFCC features, voice activity detection."""

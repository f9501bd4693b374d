"""Camera front end for the glasses: rendered scene-text frames and OCR."""

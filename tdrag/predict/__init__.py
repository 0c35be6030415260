"""A trained model on video files: video I/O, face tracking, window-by-window inference, drawing and
writing the results (``tdrag predict``)."""

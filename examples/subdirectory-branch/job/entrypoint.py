"""A job whose code is a package next to the entrypoint, inside git.directory."""


from wordcount import count_words, load_stopwords


class WordCounter:
    """Counts the words of a text, leaving out common English stop words."""

    def __init__(self):
        # Relative to the job's root: git.directory, not the repository's root.
        self.stopwords = load_stopwords('stopwords.txt')

    def perform(self, text: str, top: int = 3) -> dict[str, int]:
        """
        Count the most frequent words of a text.
        :param text: Any English text.
        :param top: How many words to return.
        :return: The `top` most frequent words (stop words left out) and their counts.
        """
        return count_words(text, self.stopwords, top)

    def docs_input_example(self) -> dict:
        return {'text': 'The cat sat on the mat; the cat slept. A dog sat too.', 'top': 2}

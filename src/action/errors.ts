/** A GitHub API call that failed for good (after retries), with GitHub's HTTP status when there was one. */
export class GitHubApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'GitHubApiError';
  }
}

"""Git hosting providers: pull requests for the branches chats work on."""

from daemon.git_providers.base import GitProvider, GitProviderError, PullRequest
from daemon.git_providers.github import GitHubProvider

__all__ = ["GitHubProvider", "GitProvider", "GitProviderError", "PullRequest"]

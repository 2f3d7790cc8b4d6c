"""Developer tools: the local stack, its gateway and demo, and the SAM template, CLI and events.

They host the function in-process, as the Lambda runtime does, importing the installed `token_url`
package.
"""

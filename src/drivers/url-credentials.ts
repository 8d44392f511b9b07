// Credentials in git URLs (`https://user:token@host/…`) are secrets: sc shows and stores a URL
// only with them replaced, and says how to give them to git instead (a credential helper, an SSH key).

const URL_WITH_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@\s/?#]+)@/g;

/** `https://user:token@host/x` → `https://user:***@host/x`; `https://token@host` → `https://***@host`; `ssh://git@host` stays. */
function redactUserinfo(scheme: string, userinfo: string): string {
  const colon = userinfo.indexOf(':');
  if (colon >= 0) return `${scheme}${userinfo.slice(0, colon)}:***@`;
  // A lone user name is a token on http(s) (`https://TOKEN@github.com`), a login name elsewhere (ssh).
  return /^https?:\/\/$/i.test(scheme) ? `${scheme}***@` : `${scheme}${userinfo}@`;
}

/** The URL as it may be shown, logged or stored. */
export function redactUrl(url: string): string {
  return url.replace(URL_WITH_USERINFO, (_m, scheme: string, userinfo: string) => redactUserinfo(scheme, userinfo));
}

/** Any URL in free text (git's own messages may quote the remote) redacted. */
export const redactSecrets = redactUrl;

/** Whether the URL carries something redactUrl hides. */
export const hasCredentials = (url: string): boolean => redactUrl(url) !== url;

/** The URL with the credentials left out entirely (for a unit file: git's credential helper supplies them). */
export function urlWithoutCredentials(url: string): string {
  return url.replace(URL_WITH_USERINFO, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    if (colon >= 0) return `${scheme}${userinfo.slice(0, colon)}@`;
    return /^https?:\/\/$/i.test(scheme) ? scheme : `${scheme}${userinfo}@`;
  });
}

//! A real OpenLDAP server for the LDAP tests and the `ldap_login` benchmark: Debian's `slapd`, started
//! on loopback in a throwaway directory with a configuration generated here.
//!
//! [`Slapd::start`] makes a CA and a certificate for `127.0.0.1`/`localhost` (rcgen), writes a
//! `slapd.conf` (schemas core, cosine, inetorgperson and nis from `/etc/ldap/schema`, one mdb
//! database, TLS with that certificate, `security tls=1` so nothing but TLS is accepted), loads the
//! tree with `slapadd` (the base, `ou=people`, the service account, the users and the group
//! [`GROUP_DN`]), and starts `slapd -d 0` listening on `ldap://127.0.0.1:P1/` (for StartTLS) and
//! `ldaps://127.0.0.1:P2/` on free ports. It waits (bounded by [`WAIT`]) until the service account
//! can bind over ldaps.
//!
//! slapd runs under a small `sh` that kills it when its standard input closes, and that pipe is held
//! open by the handle: so slapd goes when the handle is dropped, and also when the test process dies
//! without running `Drop`. [`Slapd::stop`] ends it but keeps the data (the 503 test), and
//! [`Slapd::start_again`] brings it back on the same ports.
//!
//! Changes while it runs go through the OpenLDAP command-line tools (`ldapmodify`, `ldapdelete`,
//! from the `ldap-utils` package) as the database's root DN over ldaps. Passwords are stored in
//! plain text (`userPassword: …`): slapd compares them itself, and hashing them would prove nothing
//! about the server under test.
//!
//! Without `/usr/sbin/slapd` or `ldapmodify`, `start` skips loudly (see [`skip`]) and answers `None`;
//! under `CI=true` that skip fails the test, because `.ci/run` installs both.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{WAIT, skip};

/// Where Debian installs the server.
pub const SLAPD: &str = "/usr/sbin/slapd";
/// Where Debian installs the schemas.
const SCHEMA_DIR: &str = "/etc/ldap/schema";

/// The suffix of the test tree.
pub const BASE_DN: &str = "dc=example,dc=test";
/// Where the users live (the server's `user_base`).
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=test";
/// The group whose members may sign in (the server's `group_dn`): a `groupOfNames`.
pub const GROUP_DN: &str = "cn=portal-users,ou=groups,dc=example,dc=test";
/// The service account that searches (the server's `bind_dn`).
pub const SERVICE_DN: &str = "cn=auth-service,ou=services,dc=example,dc=test";
/// The service account's password (in [`Slapd::service_password_file`]).
pub const SERVICE_PASSWORD: &str = "service-account-password-for-tests";
/// The attribute the tests mark disabled users with (`employeeType: TRUE`): inetOrgPerson has no
/// flag of its own, and this one takes a free-form string.
pub const DISABLED_ATTRIBUTE: &str = "employeeType";

const ROOT_DN: &str = "cn=admin,dc=example,dc=test";
const ROOT_PASSWORD: &str = "root-password-for-tests";

/// How the server under test reaches the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with StartTLS.
    StartTls,
}

/// A person in the directory: an `inetOrgPerson` under [`PEOPLE_DN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUser {
    /// `uid`, also the entry's RDN.
    pub uid: String,
    /// `mail` (empty: none).
    pub mail: String,
    /// `givenName`.
    pub given_name: String,
    /// `sn`.
    pub sn: String,
    /// `userPassword`.
    pub password: String,
    /// `mobile`, when set.
    pub mobile: Option<String>,
    /// Marked disabled ([`DISABLED_ATTRIBUTE`]: `TRUE`).
    pub disabled: bool,
    /// Listed as a `member` of [`GROUP_DN`].
    pub in_group: bool,
}

impl LdapUser {
    /// A user in the group, not disabled, without a mobile number; names from the uid.
    pub fn new(uid: &str, mail: &str, password: &str) -> Self {
        let mut given = uid.to_owned();
        if let Some(first) = given.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        Self {
            uid: uid.to_owned(),
            mail: mail.to_owned(),
            given_name: given,
            sn: "Tester".to_owned(),
            password: password.to_owned(),
            mobile: None,
            disabled: false,
            in_group: true,
        }
    }

    /// With `givenName` and `sn`.
    pub fn names(mut self, given_name: &str, sn: &str) -> Self {
        given_name.clone_into(&mut self.given_name);
        sn.clone_into(&mut self.sn);
        self
    }

    /// With a `mobile` number.
    pub fn mobile(mut self, mobile: &str) -> Self {
        self.mobile = Some(mobile.to_owned());
        self
    }

    /// Marked disabled.
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }

    /// Not a member of the group.
    pub fn outside_group(mut self) -> Self {
        self.in_group = false;
        self
    }

    /// The entry's DN.
    pub fn dn(&self) -> String {
        format!("uid={},{PEOPLE_DN}", self.uid)
    }

    /// The entry as LDIF (no trailing blank line).
    fn ldif(&self) -> String {
        let mut s = format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {} {}\ngivenName: {}\nsn: {}\nuserPassword: {}\n",
            self.dn(),
            self.uid,
            self.given_name,
            self.sn,
            self.given_name,
            self.sn,
            self.password
        );
        // An empty e-mail leaves the attribute out (an entry the server cannot turn into a user).
        if !self.mail.is_empty() {
            s.push_str(&format!("mail: {}\n", self.mail));
        }
        if let Some(m) = &self.mobile {
            s.push_str(&format!("mobile: {m}\n"));
        }
        if self.disabled {
            s.push_str(&format!("{DISABLED_ATTRIBUTE}: TRUE\n"));
        }
        s
    }
}

/// A running (or stopped) slapd and its files.
pub struct Slapd {
    dir: TempDir,
    child: Option<Child>,
    // Held open for slapd's whole life: its wrapper kills it when this pipe closes.
    stdin: Option<ChildStdin>,
    ldap_port: u16,
    ldaps_port: u16,
}

impl std::fmt::Debug for Slapd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slapd")
            .field("dir", &self.dir.path())
            .field("ldap_port", &self.ldap_port)
            .field("ldaps_port", &self.ldaps_port)
            .field("running", &self.child.is_some())
            .finish()
    }
}

/// Why slapd cannot run on this machine, if it cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new(SLAPD).is_file() {
        return Some(format!(
            "{SLAPD} is missing; the LDAP tests need Debian's slapd (apt-get install slapd ldap-utils)"
        ));
    }
    let tools = Command::new("ldapmodify").arg("-VV").stdin(Stdio::null()).output();
    if tools.is_err() {
        return Some("ldapmodify is not on PATH; the LDAP tests need ldap-utils".to_owned());
    }
    if !Path::new(SCHEMA_DIR).join("inetorgperson.schema").is_file() {
        return Some(format!("{SCHEMA_DIR}/inetorgperson.schema is missing"));
    }
    None
}

impl Slapd {
    /// Starts a directory holding `users`, or skips (see [`skip`]) and answers `None` when slapd or
    /// the ldap tools are missing.
    #[track_caller]
    pub fn start(users: &[LdapUser]) -> Option<Slapd> {
        if let Some(why) = unavailable() {
            skip(&why);
            return None;
        }
        match Self::try_start(users) {
            Ok(s) => Some(s),
            Err(e) => panic!("slapd did not start: {e}"),
        }
    }

    /// Starts a directory holding `users`, or says why it could not.
    pub fn try_start(users: &[LdapUser]) -> Result<Slapd, String> {
        let dir = tempfile::Builder::new()
            .prefix("auth-slapd-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        write_files(dir.path(), users)?;
        let mut dir = dir;
        // Free ports are found by binding port 0; another process could take one before slapd
        // binds it, so a start that fails on its listeners tries again on new ports.
        let mut last = String::new();
        for _ in 0..3 {
            let (ldap_port, ldaps_port) = (free_port()?, free_port()?);
            let mut slapd = Slapd { dir, child: None, stdin: None, ldap_port, ldaps_port };
            match slapd.spawn() {
                Ok(()) => return Ok(slapd),
                Err(e) => {
                    last = e;
                    slapd.kill_now();
                    dir = slapd.take_dir();
                }
            }
        }
        Err(last)
    }

    /// Moves the directory out of a handle that failed to start.
    fn take_dir(mut self) -> TempDir {
        // Replaced by an empty stand-in; the handle is dropped right after.
        let empty = tempfile::tempdir().expect("a tempdir");
        self.stdin = None;
        self.child = None;
        std::mem::replace(&mut self.dir, empty)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("slapd.log"))
            .map_err(|e| format!("slapd.log: {e}"))?;
        let urls =
            format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/", self.ldap_port, self.ldaps_port);
        // `sh` starts slapd in the background (so its standard input is /dev/null), then waits for its
        // own standard input to close and ends slapd with SIGTERM.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("\"$@\" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid")
            .arg("sh")
            .arg(SLAPD)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(&urls)
            // Debug level 256 (stats) keeps slapd in the foreground and writes every operation, with
            // its filter, to slapd.log: the tests check which searches were made.
            .args(["-d", "256"])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning slapd: {e}"))?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("slapd exited ({status}):\n{}", self.log()));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.ldaps_port)).is_ok()
                && self.tool("ldapwhoami", &["-D", SERVICE_DN, "-w", SERVICE_PASSWORD]).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("slapd did not answer within {WAIT:?}:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What slapd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// The filter of every search slapd has answered so far, in order, as slapd logs it (values
    /// normalised: an escaped `*` appears as `\2A`).
    pub fn searches(&self) -> Vec<String> {
        self.log_values(" SRCH ", "filter=\"")
    }

    /// The DN of every simple bind slapd has received so far, in order.
    pub fn binds(&self) -> Vec<String> {
        // slapd logs a bind when it arrives (`method=128`) and, if it succeeds, again with its mechanism.
        self.log_values(" method=", "dn=\"")
    }

    /// The quoted value after `key` on every log line containing `marker`.
    fn log_values(&self, marker: &str, key: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(marker))
            .filter_map(|l| {
                let start = l.find(key)? + key.len();
                let rest = l.get(start..)?;
                Some(rest.get(..rest.find('"')?)?.to_owned())
            })
            .collect()
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// `ldap://127.0.0.1:PORT`, which accepts nothing but StartTLS before TLS is up.
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// The URL for a transport.
    pub fn url(&self, transport: Transport) -> String {
        match transport {
            Transport::Ldaps => self.ldaps_url(),
            Transport::StartTls => self.ldap_url(),
        }
    }

    /// The CA that signed slapd's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that did not sign slapd's certificate (PEM), for tests that must see TLS refused.
    pub fn unrelated_ca_file(&self) -> PathBuf {
        self.dir.path().join("unrelated-ca.pem")
    }

    /// The service account's password in a file of mode 0600.
    pub fn service_password_file(&self) -> PathBuf {
        self.dir.path().join("service.secret")
    }

    /// The throwaway directory (configuration, database, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `[[ldap.directories]]` table for the server under test: this directory as `name`, over
    /// `transport`, with the group and the disabled flag; `extra` lines go into the table before its
    /// attribute map.
    pub fn directory_toml(&self, name: &str, transport: Transport, extra: &str) -> String {
        let start_tls = if transport == Transport::StartTls { "start_tls = true\n" } else { "" };
        format!(
            "[[ldap.directories]]\nname = \"{name}\"\nurl = \"{}\"\n{start_tls}ca_file = \"{}\"\n\
             bind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{}\"\nuser_base = \"{PEOPLE_DN}\"\n\
             group_dn = \"{GROUP_DN}\"\ntimeout_secs = 3\n{extra}\n\
             [ldap.directories.attributes]\ndisabled = \"{DISABLED_ATTRIBUTE}\"\n",
            self.url(transport),
            self.ca_file().display(),
            self.service_password_file().display(),
        )
    }

    /// Runs an OpenLDAP tool against the ldaps listener as the root DN unless `args` binds otherwise;
    /// its stdout, or what went wrong.
    fn tool(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        self.tool_with_input(tool, args, None)
    }

    fn tool_with_input(
        &self,
        tool: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, String> {
        let mut cmd = Command::new(tool);
        cmd.arg("-x").arg("-H").arg(self.ldaps_url());
        if !args.contains(&"-D") {
            cmd.args(["-D", ROOT_DN, "-w", ROOT_PASSWORD]);
        }
        cmd.args(args)
            // Only this CA, whatever /etc/ldap/ldap.conf says.
            .env("LDAPTLS_CACERT", self.ca_file())
            .env("LDAPTLS_REQCERT", "demand")
            .env("LDAPRC", "/dev/null")
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawning {tool}: {e}"))?;
        if let Some(text) = input {
            let mut pipe = child.stdin.take().ok_or("no stdin pipe")?;
            pipe.write_all(text.as_bytes()).map_err(|e| format!("writing to {tool}: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("waiting for {tool}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Applies LDIF change records (`changetype: add|modify|delete`) as the root DN.
    #[track_caller]
    pub fn modify(&self, ldif: &str) {
        if let Err(e) = self.tool_with_input("ldapmodify", &[], Some(ldif)) {
            panic!("{e}\n--- LDIF\n{ldif}");
        }
    }

    /// Adds a user (and makes it a member of the group when [`LdapUser::in_group`]).
    #[track_caller]
    pub fn add_user(&self, user: &LdapUser) {
        // `changetype` must follow the `dn:` line directly.
        let entry = user.ldif();
        let (dn, rest) = entry.split_once('\n').unwrap_or((&entry, ""));
        self.modify(&format!("{dn}\nchangetype: add\n{rest}"));
        if user.in_group {
            self.set_member(user, true);
        }
    }

    /// Deletes a user's entry (and its group membership).
    #[track_caller]
    pub fn delete_user(&self, user: &LdapUser) {
        if user.in_group {
            self.set_member(user, false);
        }
        if let Err(e) = self.tool("ldapdelete", &[&user.dn()]) {
            panic!("{e}");
        }
    }

    /// Adds the user to the group, or removes them from it.
    #[track_caller]
    pub fn set_member(&self, user: &LdapUser, member: bool) {
        let op = if member { "add" } else { "delete" };
        self.modify(&format!(
            "dn: {GROUP_DN}\nchangetype: modify\n{op}: member\nmember: {}\n",
            user.dn()
        ));
    }

    /// Replaces one attribute's value of a user's entry.
    #[track_caller]
    pub fn replace(&self, user: &LdapUser, attribute: &str, value: &str) {
        self.modify(&format!(
            "dn: {}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n",
            user.dn()
        ));
    }

    /// Searches as the service account; the LDIF answer.
    pub fn search(&self, base: &str, filter: &str) -> Result<String, String> {
        self.tool(
            "ldapsearch",
            &["-D", SERVICE_DN, "-w", SERVICE_PASSWORD, "-b", base, "-LLL", filter],
        )
    }

    /// Stops slapd (SIGTERM) and waits for it; the data stays for [`Slapd::start_again`].
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take()
            && crate::wait_or_kill(&mut child)
        {
            self.kill_by_pid_file();
        }
        crate::wait_port_closed(self.ldaps_port);
    }

    /// Starts slapd again on the same ports with the same data.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "slapd is still running");
        if let Err(e) = self.spawn() {
            panic!("slapd did not start again: {e}");
        }
    }

    fn kill_now(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.kill_by_pid_file();
    }

    /// The wrapper may be gone while slapd is not (a wrapper killed by a signal); the pid file
    /// names it.
    fn kill_by_pid_file(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("slapd.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

/// The configuration, the certificates, the password file and the loaded database.
fn write_files(dir: &Path, users: &[LdapUser]) -> Result<(), String> {
    let (ca, cert, key) = certificates();
    let (unrelated, _, _) = certificates();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    write("ca.pem", &ca)?;
    write("unrelated-ca.pem", &unrelated)?;
    write("server.pem", &cert)?;
    write("server-key.pem", &key)?;
    write("service.secret", &format!("{SERVICE_PASSWORD}\n"))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.join("service.secret"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| format!("chmod service.secret: {e}"))?;
    }
    std::fs::create_dir(dir.join("db")).map_err(|e| format!("db dir: {e}"))?;
    let d = dir.display();
    let conf = format!(
        "include {SCHEMA_DIR}/core.schema\n\
         include {SCHEMA_DIR}/cosine.schema\n\
         include {SCHEMA_DIR}/inetorgperson.schema\n\
         include {SCHEMA_DIR}/nis.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {d}/slapd.pid\n\
         TLSCACertificateFile {d}/ca.pem\n\
         TLSCertificateFile {d}/server.pem\n\
         TLSCertificateKeyFile {d}/server-key.pem\n\
         # Nothing but TLS (ldaps, or after StartTLS): a client that sends a bind in clear text is refused.\n\
         security tls=1\n\
         database mdb\n\
         maxsize 67108864\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PASSWORD}\n\
         directory {d}/db\n\
         limits dn.exact=\"{SERVICE_DN}\" size=unlimited time=unlimited\n\
         access to attrs=userPassword\n  by anonymous auth\n  by * none\n\
         access to *\n  by dn.exact=\"{SERVICE_DN}\" read\n  by anonymous auth\n  by * none\n"
    );
    write("slapd.conf", &conf)?;
    let mut ldif = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {SERVICE_DN}\nobjectClass: person\ncn: auth-service\nsn: service\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    for u in users {
        ldif.push_str(&u.ldif());
        ldif.push('\n');
    }
    // groupOfNames needs one member at least; the service account is always there and never signs in.
    ldif.push_str(&format!(
        "dn: {GROUP_DN}\nobjectClass: groupOfNames\ncn: portal-users\nmember: {SERVICE_DN}\n"
    ));
    for u in users.iter().filter(|u| u.in_group) {
        ldif.push_str(&format!("member: {}\n", u.dn()));
    }
    write("seed.ldif", &ldif)?;
    let slapadd = Path::new(SLAPD).with_file_name("slapadd");
    let out = Command::new(&slapadd)
        .arg("-q")
        .arg("-f")
        .arg(dir.join("slapd.conf"))
        .arg("-l")
        .arg(dir.join("seed.ldif"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", slapadd.display()))?;
    if !out.status.success() {
        return Err(format!(
            "slapadd failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A fresh CA and a server certificate for `127.0.0.1` and `localhost` signed by it, as PEM:
/// `(ca, cert, key)`.
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "auth-tests slapd CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");

    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = server.signed_by(&key, &ca).expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

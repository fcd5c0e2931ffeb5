// Renders the Helm chart the way `helm template` does, for test/deploy/chart.test.ts where no
// helm binary is at hand: Go's text/template with the sprig functions (helm's own engine
// and function library) plus helm's include, tpl, required, fail, toYaml, fromYaml and toJson;
// values merged like helm (maps merge, null deletes, -f files in order, then --set).
// Not helm: no schema validation (the test does it with ajv), no lookup, no subcharts,
// no Capabilities beyond a fixed version.
//
// Built against Debian's packaged sources (golang-go, golang-github-masterminds-sprig-dev,
// golang-gopkg-yaml.v3-dev), in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render . && ./render CHART_DIR [-f values.yaml]... [--set a.b=c]...
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type values = map[string]interface{}

func readYAML(path string) (values, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := values{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// merge returns base with over on top: maps merge, null deletes, anything else replaces.
func merge(base, over values) values {
	out := values{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		if vm, ok := v.(values); ok {
			if bm, ok := out[k].(values); ok {
				out[k] = merge(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// set applies one --set a.b.c=value (value as helm parses it: int, bool, null or string).
func set(target values, expr string) error {
	eq := strings.Index(expr, "=")
	if eq <= 0 {
		return fmt.Errorf("--set %s: expected key=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var value interface{} = raw
	if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
		value = int(i)
	} else if raw == "true" || raw == "false" {
		value = raw == "true"
	} else if raw == "null" {
		value = nil
	}
	at := target
	for _, key := range keys[:len(keys)-1] {
		next, ok := at[key].(values)
		if !ok {
			next = values{}
		}
		copied := values{}
		for k, v := range next {
			copied[k] = v
		}
		at[key] = copied
		at = copied
	}
	at[keys[len(keys)-1]] = value
	return nil
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func render(chartDir string, valueFiles, sets []string) (string, error) {
	chart, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	name, _ := chart["name"].(string)
	vals, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range valueFiles {
		over, err := readYAML(f)
		if err != nil {
			return "", err
		}
		vals = merge(vals, over)
	}
	for _, s := range sets {
		if err := set(vals, s); err != nil {
			return "", err
		}
	}

	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 100 {
			return "", errors.New("include: too deep")
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) values {
		out := values{}
		if err := yaml.Unmarshal([]byte(s), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	funcs["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["lookup"] = func(string, string, string, string) (values, error) { return values{}, nil }
	root.Funcs(funcs).Option("missingkey=zero")

	templatesDir := filepath.Join(chartDir, "templates")
	var names []string
	err = filepath.WalkDir(templatesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, path)
		full := name + "/" + filepath.ToSlash(rel)
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, err := root.New(full).Parse(string(text)); err != nil {
			return err
		}
		names = append(names, full)
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)

	chartValues := values{
		"Name":       chart["name"],
		"Version":    chart["version"],
		"AppVersion": chart["appVersion"],
	}
	release := values{"Name": "auth", "Namespace": "default", "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1}
	capabilities := values{"KubeVersion": values{"Version": "v1.30.0", "Major": "1", "Minor": "30"}}
	var out strings.Builder
	for _, full := range names {
		base := filepath.Base(full)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := values{
			"Values":       vals,
			"Chart":        chartValues,
			"Release":      release,
			"Capabilities": capabilities,
			"Template":     values{"Name": full, "BasePath": name + "/templates"},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, data); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" || base == "NOTES.txt" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimSpace(text))
	}
	return out.String(), nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: render CHART_DIR [-f values.yaml]... [--set a.b=c]...")
		os.Exit(2)
	}
	chartDir := args[0]
	var files, sets []string
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-f":
			i++
			files = append(files, args[i])
		case "--set":
			i++
			sets = append(sets, args[i])
		default:
			fmt.Fprintf(os.Stderr, "unknown argument %s\n", args[i])
			os.Exit(2)
		}
	}
	text, err := render(chartDir, files, sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
	fmt.Print(text)
}
